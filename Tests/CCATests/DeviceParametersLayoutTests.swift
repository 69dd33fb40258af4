import Testing
@testable import CCA

/// The flat-buffer layout of the GPU trainer's parameters (no GPU needed): matrices first, so that one
/// boundary separates the decayed elements from the others, every parameter aligned, none overlapping.
@Suite struct DeviceParametersLayoutTests {
    let shapes: [String: [Int]] = [
        "norm.weight": [5], "embed_tokens.weight": [7, 3], "layers.0.self_attn.qk_norm.temp": [1],
        "layers.0.self_attn.qkv_proj.conv_qk_grouped.weight": [4, 2, 2], "layers.0.mlp.down_proj.weight": [3, 9],
        "layers.0.self_attn.qkv_proj.conv_qk_depthwise.bias": [4],
    ]

    @Test func matricesComeFirstInNameOrderThenTheRest() {
        let (segments, count, decayedCount) = DeviceParameters.layout(shapes)
        #expect(segments.map(\.name) == [
            "embed_tokens.weight", "layers.0.mlp.down_proj.weight", "layers.0.self_attn.qkv_proj.conv_qk_grouped.weight",
            "layers.0.self_attn.qk_norm.temp", "layers.0.self_attn.qkv_proj.conv_qk_depthwise.bias", "norm.weight",
        ])
        // Every decayed element lies below the boundary, every other one at or above it.
        for segment in segments {
            let decayed = segment.shape.count >= 2
            #expect(decayed ? segment.offset + segment.count <= decayedCount : segment.offset >= decayedCount, "\(segment.name)")
        }
        #expect(count % DeviceParameters.alignment == 0 && count >= segments.last!.offset + segments.last!.count)
    }

    @Test func segmentsAreAlignedAndDisjoint() {
        let segments = DeviceParameters.layout(shapes).segments
        for segment in segments { #expect(segment.offset % DeviceParameters.alignment == 0, "\(segment.name)") }
        for (before, after) in zip(segments, segments.dropFirst()) { #expect(before.offset + before.count <= after.offset) }
        #expect(segments.map(\.count) == segments.map { shapes[$0.name]!.reduce(1, *) })
    }

    @Test func noParametersGiveAnEmptyLayout() {
        let (segments, count, decayedCount) = DeviceParameters.layout([:])
        #expect(segments.isEmpty && count == 0 && decayedCount == 0)
    }
}
