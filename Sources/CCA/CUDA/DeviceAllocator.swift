import Dispatch

/// A block of device memory, or a slice of one. A block goes back to its allocator's cache when the last
/// reference to it (or to a slice of it) is dropped.
final class DeviceBuffer: @unchecked Sendable {
    /// The device address.
    let address: UInt64
    let byteCount: Int
    private enum Owner {
        case allocator(DeviceAllocator)
        case block(DeviceBuffer)
    }
    private let owner: Owner

    fileprivate init(address: UInt64, byteCount: Int, allocator: DeviceAllocator) {
        (self.address, self.byteCount, owner) = (address, byteCount, .allocator(allocator))
    }

    /// The `byteCount` bytes from `byteOffset` on, as a buffer of their own that keeps this one alive (the
    /// index arrays of a decode step share one upload this way).
    func slice(byteOffset: Int, byteCount: Int) -> DeviceBuffer {
        precondition(byteOffset >= 0 && byteCount >= 0 && byteOffset + byteCount <= self.byteCount,
                     "slice \(byteOffset)..<\(byteOffset + byteCount) of \(self.byteCount) bytes")
        return DeviceBuffer(address: address + UInt64(byteOffset), byteCount: byteCount, block: self)
    }

    private init(address: UInt64, byteCount: Int, block: DeviceBuffer) {
        (self.address, self.byteCount, owner) = (address, byteCount, .block(block))
    }

    deinit {
        if case .allocator(let allocator) = owner { allocator.recycle(address: address, byteCount: byteCount) }
    }
}

/// A caching allocator for device memory: released blocks are kept in per-size free lists and handed out
/// again, so that repeated forward passes make no `cuMemAlloc`/`cuMemFree` calls (each one synchronises
/// the device).
///
/// Reuse is safe without events because every kernel and copy of this package runs on one stream: work
/// queued after a block is handed out again runs after the work that used it before. Sizes are rounded up
/// (to 512 bytes, or to 2 MiB above 1 MiB) so that similar requests share blocks.
final class DeviceAllocator: @unchecked Sendable {
    private let driver: CUDADriver
    private let stream: CUDADriver.Handle
    private var free: [Int: [UInt64]] = [:]
    private let lock = DispatchQueue(label: "swift-cca.device-allocator")
    /// When set, every block handed out is first filled with 0xFF bytes (NaN as float32 and as bfloat16), so
    /// that a check reading an element no kernel wrote fails. Used by the self-test.
    var poison = false
    /// While set (a graph capture), every block handed out is also kept here, so that none goes back to the
    /// cache, and to other work, while the captured graph that uses it exists.
    private var retained: [DeviceBuffer]?
    /// Bytes of the blocks handed out and not yet released, and the most there have been since the last
    /// ``resetPeak()``: the memory a computation needs, as `torch.cuda.max_memory_allocated` counts it.
    private(set) var bytesInUse = 0, peakBytesInUse = 0

    init(driver: CUDADriver, stream: CUDADriver.Handle) {
        self.driver = driver
        self.stream = stream
    }

    /// A block of at least `byteCount` bytes (256-byte aligned, as `cuMemAlloc` aligns).
    func allocate(_ byteCount: Int) throws -> DeviceBuffer {
        let size = Self.sizeClass(byteCount)
        var address = lock.sync { free[size]?.popLast() } ?? 0
        if address == 0 {
            var result = driver.memoryAllocate(&address, size)
            if result == 2 {  // CUDA_ERROR_OUT_OF_MEMORY: give the cached blocks back and try once more
                try releaseCached()
                result = driver.memoryAllocate(&address, size)
            }
            try driver.check(result, "cuMemAlloc(\(size) bytes)")
        }
        if poison { try driver.check(driver.memset32(address, 0xFFFF_FFFF, size / 4, stream), "cuMemsetD32Async") }
        let buffer = DeviceBuffer(address: address, byteCount: size, allocator: self)
        lock.sync {
            bytesInUse += size
            peakBytesInUse = max(peakBytesInUse, bytesInUse)
            retained?.append(buffer)
        }
        return buffer
    }

    /// Runs `body`, keeping every block handed out meanwhile; returns them with `body`'s result (for
    /// ``CUDAGraph``: the graph holds them, so replays find their memory untouched by other work).
    func retainingAllocations<R>(_ body: () throws -> R) rethrows -> (result: R, buffers: [DeviceBuffer]) {
        lock.sync { precondition(retained == nil, "nested graph captures"); retained = [] }
        defer { lock.sync { retained = nil } }
        let result = try body()
        return (result, lock.sync { retained ?? [] })
    }

    /// Frees every cached block (the blocks in use stay).
    func releaseCached() throws {
        try driver.check(driver.streamSynchronize(stream), "cuStreamSynchronize")
        let blocks = lock.sync { () -> [UInt64] in
            defer { free.removeAll() }
            return free.values.flatMap { $0 }
        }
        for address in blocks { try driver.check(driver.memoryFree(address), "cuMemFree") }
    }

    fileprivate func recycle(address: UInt64, byteCount: Int) {
        lock.sync {
            free[byteCount, default: []].append(address)
            bytesInUse -= byteCount
        }
    }

    /// Starts a new peak measurement from the bytes in use now.
    func resetPeak() { lock.sync { peakBytesInUse = bytesInUse } }

    private static func sizeClass(_ byteCount: Int) -> Int {
        let granule = byteCount > 1 << 20 ? 2 << 20 : 512
        return max(granule, (byteCount + granule - 1) / granule * granule)
    }
}
