extension CUDAContext {
    /// `stored` (a tensor left in its memory-mapped file) copied to the device in `precision`: BF16 into
    /// bfloat16 and F32 into float32 byte for byte, straight from the mapping; any other pairing converted a
    /// block at a time, so no float32 copy of the whole tensor is ever made on the host.
    func upload(_ stored: StoredTensor, _ precision: CUDAPrecision) throws -> DeviceTensor {
        let result = try empty(stored.shape, precision)
        let count = stored.count
        guard count > 0 else { return result }
        #if _endian(little)
        let sameBytes = (stored.dtype == .BF16 && precision == .bfloat16) || (stored.dtype == .F32 && precision == .float32)
        if sameBytes {
            try driver.check(driver.copyHostToDevice(result.address, stored.base, count * precision.byteCount, stream), "cuMemcpyHtoDAsync")
            return result
        }
        #endif
        let block = 1 << 20
        var floats = [Float](repeating: 0, count: block)
        for start in stride(from: 0, to: count, by: block) {
            let size = min(block, count - start)
            floats.withUnsafeMutableBufferPointer { stored.decode(start..<(start + size), into: $0.baseAddress!) }
            let destination = result.address + UInt64(start * precision.byteCount)
            switch precision {
            case .float32:
                try floats.withUnsafeBytes { bytes in
                    try driver.check(driver.copyHostToDevice(destination, bytes.baseAddress!, size * 4, stream), "cuMemcpyHtoDAsync")
                }
            case .bfloat16:
                let bits = floats[0..<size].map(HalfPrecision.bfloat16Bits)
                try bits.withUnsafeBytes { bytes in
                    try driver.check(driver.copyHostToDevice(destination, bytes.baseAddress!, size * 2, stream), "cuMemcpyHtoDAsync")
                }
            }
        }
        return result
    }
}
