import CCAKernels

/// The CPU kernels' fused attention forward (the `CCAKernels` target's `cca_attention_block`): per block of
/// query rows, tiles of keys through the score product, the causal mask, an online softmax and the product
/// with the values, so no block ever holds more than a tile of scores, in the ``CPUKernelVariant/selected``
/// instruction set.
///
/// ``Attention`` runs it for float32 attention without a sliding window or a key mask; those, and float64,
/// run the reference blocks of ``Attention``, which the kernel is tested against.
enum AttentionKernel {
    /// Whether the kernel computes attention with these heads over these sequences.
    static func handles(_ sequences: [Attention.Sequence<Float>], heads: Attention.Heads) -> Bool {
        heads.window == nil && sequences.allSatisfy { $0.keyValid == nil }
    }

    /// Attention for several sequences at once, as ``Attention`` defines it (see ``handles(_:heads:)``).
    static func forward(_ sequences: [Attention.Sequence<Float>], heads: Attention.Heads,
                        kernels: CPUKernelVariant = .selected) {
        let blockRows = Attention.blockRows
        var tasks: [(sequence: Int, head: Int, block: Int, keys: Int)] = []
        for (index, sequence) in sequences.enumerated() {
            let blocks = (sequence.queries + blockRows - 1) / blockRows
            for block in 0..<blocks {
                // The keys the block's last row sees: its work.
                let keys = heads.causal ? sequence.keyOffset + min(sequence.queries, (block + 1) * blockRows) : sequence.keys
                for head in 0..<heads.queryHeads { tasks.append((index, head, block, keys)) }
            }
        }
        guard !tasks.isEmpty else { return }
        // Longest blocks first, taken one at a time by whichever core is free: the causal blocks' uneven work
        // evens out to within the last, shortest task. Each worker allocates its workspace once.
        tasks.sort { $0.keys > $1.keys }
        let workspaceCount = cca_attention_workspace_count(kernels.kernel, blockRows, heads.keyDim, heads.valueDim)
        let scale = Float(heads.scale)
        parallelWorkers(tasks: tasks.count) { next in
            let workspace = UnsafeMutablePointer<Float>.allocate(capacity: workspaceCount)
            defer { workspace.deallocate() }
            while let index = next() {
                let task = tasks[index], o = sequences[task.sequence]
                let firstRow = task.block * blockRows, kvHead = task.head / heads.group
                // Row t of the block sees keys up to its own position keyOffset + firstRow + t (all keys when not causal).
                let (visible, step) = heads.causal ? (o.keyOffset + firstRow + 1, 1) : (o.keys, 0)
                cca_attention_block(kernels.kernel, o.q + firstRow * o.qStride + task.head * heads.keyDim, o.qStride,
                                    o.k + kvHead * heads.keyDim, o.kStride, o.v + kvHead * heads.valueDim, o.vStride,
                                    o.out + firstRow * o.outStride + task.head * heads.valueDim, o.outStride,
                                    o.lse + firstRow * heads.queryHeads + task.head, heads.queryHeads,
                                    min(blockRows, o.queries - firstRow), o.keys, heads.keyDim, heads.valueDim, scale,
                                    visible, step, workspace)
            }
        }
    }
}
