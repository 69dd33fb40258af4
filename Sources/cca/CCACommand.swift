import ArgumentParser
import CCA

@main
struct CCACommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cca",
        abstract: "Compressed Convolutional Attention (CCA / CCGQA): run layers, cost tables and benchmarks.",
        subcommands: [TrainCommand.self, BackwardCommand.self]
    )
}
