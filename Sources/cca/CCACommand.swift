import ArgumentParser
import CCA

@main
struct CCACommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cca",
        abstract: "Compressed Convolutional Attention (CCA / CCGQA): run layers, cost tables and benchmarks.",
        discussion: "With no subcommand, `cca` runs a short tour on built-in defaults.",
        subcommands: [TourCommand.self, ForwardCommand.self, BackwardCommand.self, TrainCommand.self, GenerateCommand.self, ServeCommand.self, DataCommand.self, CostCommand.self, SelfTestCommand.self,
                      BenchCommand.self],
        defaultSubcommand: TourCommand.self
    )
}

/// Prints rows as an aligned text table (first column left-aligned, the rest right-aligned).
func printTable(_ header: [String], _ rows: [[String]]) {
    let all = [header] + rows
    let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
    for (index, row) in all.enumerated() {
        let cells = row.enumerated().map { column, cell in
            let padding = String(repeating: " ", count: widths[column] - cell.count)
            return column == 0 ? cell + padding : padding + cell
        }
        print(cells.joined(separator: "  "))
        if index == 0 { print(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")) }
    }
}

/// A number with a metric suffix (k, M, G, T) and three significant digits.
func formatCount(_ value: Double) -> String {
    let units: [(Double, String)] = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")]
    for (scale, suffix) in units where abs(value) >= scale { return format(value / scale, digits: 3) + suffix }
    return format(value, digits: 3)
}

/// `value` with `digits` significant digits.
func format(_ value: Double, digits: Int = 3) -> String { NumberFormatting.significant(value, digits) }
