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

    /// A CCA layer's down-projections lie one after another in q, k, current v, delayed v order (alphabetical
    /// order would put k first), so that its forward makes them with one product.
    @Test func ccaProjectionsAreAdjacentInStackingOrder() {
        let prefix = "layers.1.self_attn.qkv_proj."
        let projections = ["q_proj", "k_proj", "v_proj_current", "v_proj_delayed"].map { prefix + $0 + ".weight" }
        var shapes = self.shapes
        for (name, rows) in zip(projections, [128, 64, 32, 32]) { shapes[name] = [rows, 64] }
        let segments = DeviceParameters.layout(shapes).segments
        let placed = projections.map { name in segments.first { $0.name == name }! }
        for (before, after) in zip(placed, placed.dropFirst()) { #expect(after.offset == before.offset + before.count) }
    }

    @Test func noParametersGiveAnEmptyLayout() {
        let (segments, count, decayedCount) = DeviceParameters.layout([:])
        #expect(segments.isEmpty && count == 0 && decayedCount == 0)
    }
}
