import ArgumentParser
import CCA
#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
@preconcurrency import Darwin
#endif

@main
struct CCACommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cca",
        abstract: "Compressed Convolutional Attention (CCA / CCGQA): run layers, cost tables and benchmarks.",
        discussion: "With no subcommand, `cca` runs a short tour on built-in defaults.",
        version: CCALibrary.version,
        subcommands: [TourCommand.self, InitLayerCommand.self, ForwardCommand.self, BackwardCommand.self, TrainCommand.self,
                      GenerateCommand.self, ServeCommand.self, LogitsCommand.self, InspectCommand.self, DataCommand.self,
                      TokenizerCommand.self, CostCommand.self, SelfTestCommand.self, BenchCommand.self],
        defaultSubcommand: TourCommand.self
    )

    static func main() {
        // Line by line even into a pipe, so results show as they are printed, not when the process ends.
        setvbuf(stdout, nil, _IOLBF, 0)
        main(nil)
    }
}

/// A command-line request that cannot be carried out, found after parsing (so no usage line is shown).
struct CommandError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Whether anything (file, directory, link) exists at `path`.
func pathExists(_ path: String) -> Bool {
    var info = stat()
    return lstat(path, &info) == 0
}

/// Runs a library check inside `validate()`, so that its message comes with the subcommand's usage line.
func validating(_ check: () throws -> Void) throws {
    do { try check() } catch { throw ValidationError("\(error)") }
}

extension AttentionKind: ExpressibleByArgument {}
extension LanguageModelConfig.Preset: ExpressibleByArgument {}
extension Device: ExpressibleByArgument {}
extension CUDAPrecision: ExpressibleByArgument {}

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
    if abs(value) >= 1e15 {
        // Past T, a power of ten reads better than a long string of digits before the suffix.
        let exponent = Int(abs(value).log10Floor)
        return format(value / Double.pow10(exponent), digits: 3) + "e\(exponent)"
    }
    let units: [(Double, String)] = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")]
    for (scale, suffix) in units where abs(value) >= scale { return format(value / scale, digits: 3) + suffix }
    return format(value, digits: 3)
}

/// `value` with `digits` significant digits.
func format(_ value: Double, digits: Int = 3) -> String { NumberFormatting.significant(value, digits) }

extension Double {
    /// ⌊log10(self)⌋ for a positive finite value, by counting (no libm rounding at exact powers of ten).
    fileprivate var log10Floor: Double {
        var exponent = 0.0, scaled = self
        while scaled >= 10 { scaled /= 10; exponent += 1 }
        return exponent
    }

    fileprivate static func pow10(_ exponent: Int) -> Double {
        (0..<exponent).reduce(1.0) { value, _ in value * 10 }
    }
}
