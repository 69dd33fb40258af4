// libFuzzer entry point for the readers in Sources/CCA/IO/FuzzTarget.swift; built and run by scripts/fuzz.sh.
// The target is chosen by CCA_FUZZ_TARGET (safetensors, json, config, checkpoint); with CCA_FUZZ_SEEDS=DIR
// the binary writes that target's seed inputs into DIR and exits.
@testable import CCA
#if canImport(Glibc)
import Glibc
#endif

private let target: FuzzTarget = {
    guard let name = getenv("CCA_FUZZ_TARGET").map({ String(cString: $0) }), let target = FuzzTarget(rawValue: name) else {
        fputs("set CCA_FUZZ_TARGET to one of: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))\n", stderr)
        exit(2)
    }
    return target
}()

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    guard let directory = getenv("CCA_FUZZ_SEEDS").map({ String(cString: $0) }) else { return 0 }
    do {
        for (index, seed) in try FuzzTarget.seeds(target).enumerated() {
            try writeAtomically(seed, to: "\(directory)/seed-\(target.rawValue)-\(index)")
        }
    } catch {
        fputs("cannot write the seeds: \(error)\n", stderr)
        exit(1)
    }
    exit(0)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    _ = target.run(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
