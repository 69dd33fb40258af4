import CCA

/// Placeholder for the layer loader that `cca forward` provides (`LayerConfigFile`); replace on merge.
func makeLayer(configPath: String, weightsPath: String) throws -> any AttentionLayer {
    throw LayerBackwardError.layerLoaderMissing
}
