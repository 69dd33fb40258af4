/// The decode state of every sequence on the device, for every layer of a model: a paged KV cache (a pool of
/// pages of ``DecodeAttention/pageTokens`` tokens per layer, the same page numbers in every layer, and a page
/// list per sequence) and, for CCA layers, per-sequence state slots holding the convolution history (the
/// last two pre-convolution latent rows `[2, ct]`, float32) and the previous token's delayed value half
/// `[ek/2]` (float32), as ``CCA``'s CPU decode state holds them.
///
/// A sequence takes the pages for its whole capacity when it joins, so a step never runs out of pages; they
/// go back to the pool when it leaves. GQA and MHA cache their keys and values, MLA its expanded per-head
/// keys `[H, dn + dr]` and values `[H, dv]` (not the compressed latent: the decode kernel reads ready keys).
final class DeviceDecodeCache {
    /// One layer's share: its cache pages and, for CCA, its state slots.
    struct Layer {
        /// `[pages, pageTokens, Hkv, dk]` and `[pages, pageTokens, Hkv, dv]`.
        let keys: DeviceTensor, values: DeviceTensor
        /// CCA only: `[slots, 2, ct]` and `[slots, ek/2]`, float32.
        let history: DeviceTensor?, valueHistory: DeviceTensor?
    }

    /// What one sequence holds.
    struct Sequence {
        let state: Int, capacity: Int
        var length = 0
        let pages: [Int32]
    }

    let layers: [Layer]
    let pageCount: Int, stateSlots: Int
    private var freePages: [Int32]
    private var freeStates: [Int]
    private(set) var sequences: [Int: Sequence] = [:]
    private var nextID = 0
    private let context: CUDAContext

    /// A cache of `pageCount` pages per layer and `stateSlots` sequences at most.
    /// - Parameter shapes: per layer, its KV heads, key and value head dims, and for CCA its `ct` and `ek`.
    init(shapes: [(heads: Attention.Heads, convolutionState: (channels: Int, valueWidth: Int)?)], pageCount: Int,
         stateSlots: Int, precision: CUDAPrecision, context: CUDAContext) throws {
        let page = DecodeAttention.pageTokens
        layers = try shapes.map { shape in
            let heads = shape.heads
            return Layer(keys: try context.empty([pageCount, page, heads.keyValueHeads, heads.keyDim], precision),
                         values: try context.empty([pageCount, page, heads.keyValueHeads, heads.valueDim], precision),
                         history: try shape.convolutionState.map { try context.empty([stateSlots, 2, $0.channels], .float32) },
                         valueHistory: try shape.convolutionState.map { try context.empty([stateSlots, $0.valueWidth / 2], .float32) })
        }
        (self.pageCount, self.stateSlots, self.context) = (pageCount, stateSlots, context)
        bytesPerToken = shapes.reduce(0) { $0 + $1.heads.keyValueHeads * ($1.heads.keyDim + $1.heads.valueDim) } * precision.byteCount
        freePages = (0..<Int32(pageCount)).reversed()
        freeStates = (0..<stateSlots).reversed()
    }

    /// Bytes of cache per token of capacity, over all layers (for error messages).
    let bytesPerToken: Int

    /// A new empty sequence of at most `capacity` tokens, its pages and state slot taken now.
    /// - Throws: ``DecodeError/capacityTooLarge(capacity:bytesPerToken:)`` when the pool has too few pages or
    ///   no free state slot.
    func add(capacity: Int) throws -> Int {
        let pagesNeeded = capacity <= 0 ? 0 : (capacity - 1) / DecodeAttention.pageTokens + 1
        guard capacity >= 0, pagesNeeded <= freePages.count, let state = freeStates.popLast() else {
            throw DecodeError.capacityTooLarge(capacity: capacity, bytesPerToken: bytesPerToken)
        }
        let pages = Array(freePages.suffix(pagesNeeded).reversed())
        freePages.removeLast(pagesNeeded)
        for layer in layers {
            if let history = layer.history {
                let width = history.count / stateSlots
                try context.zero(address: history.view([width], at: state * width).address, count: width, precision: .float32)
            }
            if let valueHistory = layer.valueHistory {
                let width = valueHistory.count / stateSlots
                try context.zero(address: valueHistory.view([width], at: state * width).address, count: width, precision: .float32)
            }
        }
        defer { nextID += 1 }
        sequences[nextID] = Sequence(state: state, capacity: capacity, pages: pages)
        return nextID
    }

    /// Gives a sequence's pages and state slot back; an unknown id is ignored.
    func remove(_ id: Int) {
        guard let sequence = sequences.removeValue(forKey: id) else { return }
        freePages += sequence.pages.reversed()
        freeStates.append(sequence.state)
    }

    /// Records that sequence `id` now holds `length` tokens.
    func setLength(_ id: Int, _ length: Int) { sequences[id]?.length = length }
}
