extension CUDAContext {
    /// Milliseconds the GPU spent on the work `body` queues, measured with two CUDA events on the stream.
    func elapsedMilliseconds(_ body: () throws -> Void) throws -> Float {
        var start: CUDADriver.Handle = nil, end: CUDADriver.Handle = nil
        try driver.check(driver.eventCreate(&start, 0), "cuEventCreate")
        defer { _ = driver.eventDestroy(start) }
        try driver.check(driver.eventCreate(&end, 0), "cuEventCreate")
        defer { _ = driver.eventDestroy(end) }
        try driver.check(driver.eventRecord(start, stream), "cuEventRecord")
        try body()
        try driver.check(driver.eventRecord(end, stream), "cuEventRecord")
        try driver.check(driver.eventSynchronize(end), "cuEventSynchronize")
        var milliseconds: Float = 0
        try driver.check(driver.eventElapsedTime(&milliseconds, start, end), "cuEventElapsedTime")
        return milliseconds
    }
}
