#!/usr/bin/env bash
# Checks that another package can depend on this one by version and use it, as a user's would:
#
#     scripts/consumer-check.sh
#
# It copies this checkout's files (tracked and untracked-but-not-ignored) into a temporary git repository
# tagged 0.1.0, writes a tiny package that depends on it with `.package(url: "file://…", from: "0.1.0")`,
# builds that package (SwiftPM refuses `unsafeFlags` in a package depended on by version, so
# this fails if any come back) and runs it: a CCA layer forward pass, checked for shape, finiteness and
# causality, and a matrix product checked against a plain loop. Everything happens under a temporary
# folder, removed at the end.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/cca-consumer.XXXXXX")"
trap 'rm -rf "$work"' EXIT

echo "consumer check: packaging $root as version 0.1.0 in $work/swift-cca"
mkdir "$work/swift-cca"
(cd "$root" && git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' file; do
    [ -e "$file" ] && printf '%s\0' "$file"
done | tar --null -T - -cf -) | tar -xf - -C "$work/swift-cca"
git -C "$work/swift-cca" init --quiet
git -C "$work/swift-cca" add --all
git -C "$work/swift-cca" -c user.name=consumer-check -c user.email=consumer-check@localhost commit --quiet -m "snapshot"
git -C "$work/swift-cca" tag 0.1.0

mkdir -p "$work/consumer/Sources/consumer"
cat > "$work/consumer/Package.swift" <<EOF
// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "consumer",
    dependencies: [.package(url: "file://$work/swift-cca", from: "0.1.0")],
    targets: [.executableTarget(name: "consumer", dependencies: [.product(name: "CCA", package: "swift-cca")])]
)
EOF
cat > "$work/consumer/Sources/consumer/main.swift" <<'EOF'
import CCA
#if canImport(Glibc)
import Glibc
#endif

// A CCA layer forward pass: the output has the input's shape, is finite, and is causal (changing the
// last token leaves every earlier output unchanged).
let config = CCAConfig(hiddenSize: 64, queryHeads: 4, keyValueHeads: 2, headDim: 16)
let layer = try CCA<Float>(config: config, seed: 1)
var x = Tensor<Float>(randomNormal: [1, 9, 64], seed: 2)
let y = try layer.forward(x)
for i in (8 * 64)..<(9 * 64) { x.storage[i] += 1 }
let changed = try layer.forward(x)
let earlierUnchanged = y.storage[..<(8 * 64)] == changed.storage[..<(8 * 64)]
let lastChanged = y.storage[(8 * 64)...] != changed.storage[(8 * 64)...]
guard y.shape == [1, 9, 64], y.storage.allSatisfy(\.isFinite), earlierUnchanged, lastChanged else {
    print("consumer check FAILED: CCA forward shape \(y.shape), causal \(earlierUnchanged), last row changed \(lastChanged)")
    exit(1)
}

// A 37×29×41 matrix product by the package's kernel against a plain float64 loop.
let (m, n, k) = (37, 29, 41)
let a = Tensor<Float>(randomNormal: [m * k], seed: 3).storage, b = Tensor<Float>(randomNormal: [k * n], seed: 4).storage
var c = [Float](repeating: 0, count: m * n)
MatrixMultiply.gemm(m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n, c: &c, ldc: n)
var worst = 0.0
for i in 0..<m {
    for j in 0..<n {
        let expected = (0..<k).reduce(0.0) { $0 + Double(a[i * k + $1]) * Double(b[$1 * n + j]) }
        worst = max(worst, abs(Double(c[i * n + j]) - expected))
    }
}
guard worst < 1e-4 else {
    print("consumer check FAILED: matrix product off by \(worst)")
    exit(1)
}
print("consumer check passed: CCA forward \(y.shape), causal; \(MatrixMultiply.kernelName(.selected)) off by \(worst)")
EOF

echo "consumer check: building the consumer"
if ! (cd "$work/consumer" && swift build > "$work/build.log" 2>&1); then
    tail -40 "$work/build.log"
    echo "consumer check FAILED: the consumer package did not build"
    exit 1
fi
"$work/consumer/.build/debug/consumer"
