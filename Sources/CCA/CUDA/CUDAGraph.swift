/// Work captured from the context's stream once and replayed with one launch (a CUDA graph): a decode step
/// of a few hundred small kernels costs one launch instead of one each.
///
/// A replay runs the same kernels with the same arguments, so it reads and writes the same addresses: the
/// graph keeps every device block allocated during the capture (the step's temporaries and its result), so
/// no other work is handed that memory while the graph exists. Inputs change between replays by copying new
/// values into buffers the captured kernels read.
final class CUDAGraph: @unchecked Sendable {
    private let driver: CUDADriver
    private let graph: CUDADriver.Handle, executable: CUDADriver.Handle
    /// The blocks the captured work uses, kept for the graph's lifetime.
    private let buffers: [DeviceBuffer]

    fileprivate init(driver: CUDADriver, graph: CUDADriver.Handle, executable: CUDADriver.Handle, buffers: [DeviceBuffer]) {
        (self.driver, self.graph, self.executable, self.buffers) = (driver, graph, executable, buffers)
    }

    /// Queues a replay on `context`'s stream.
    func launch(on context: CUDAContext) throws {
        try driver.check(driver.graphLaunch(executable, context.stream), "cuGraphLaunch")
    }

    deinit {
        _ = driver.graphExecDestroy(executable)
        _ = driver.graphDestroy(graph)
    }
}

extension CUDAContext {
    /// Captures the work `body` queues into a ``CUDAGraph`` instead of running it, and returns the graph with
    /// `body`'s result (tensors the replays will fill). Nothing runs until ``CUDAGraph/launch(on:)``.
    ///
    /// `body` must not copy between the host and the device (those copies would replay stale host memory;
    /// ``upload(_:)`` and ``download(_:)`` throw during a capture) and must use kernels already loaded and
    /// cuBLAS already warmed on the same shapes (run the same work once uncaptured first).
    /// - Throws: the first error of `body` or of the capture; the stream is out of capture mode either way.
    func capture<R>(_ body: () throws -> R) throws -> (graph: CUDAGraph, result: R) {
        // Relaxed mode: cuBLAS (and the allocator, on a cache miss) may call cuMemAlloc during the capture.
        try driver.check(driver.streamBeginCapture(stream, 2), "cuStreamBeginCapture")  // CU_STREAM_CAPTURE_MODE_RELAXED
        isCapturing = true
        var graph: CUDADriver.Handle = nil
        let captured: (result: R, buffers: [DeviceBuffer])
        do {
            defer { isCapturing = false }
            captured = try allocator.retainingAllocations(body)
        } catch {
            _ = driver.streamEndCapture(stream, &graph)
            if graph != nil { _ = driver.graphDestroy(graph) }
            throw error
        }
        try driver.check(driver.streamEndCapture(stream, &graph), "cuStreamEndCapture")
        var executable: CUDADriver.Handle = nil
        let instantiated = driver.graphInstantiate(&executable, graph, 0)
        if instantiated != 0 { _ = driver.graphDestroy(graph) }
        try driver.check(instantiated, "cuGraphInstantiateWithFlags")
        return (CUDAGraph(driver: driver, graph: graph, executable: executable, buffers: captured.buffers), captured.result)
    }
}
