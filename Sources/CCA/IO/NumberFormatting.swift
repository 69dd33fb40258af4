/// Number formatting for tables and progress lines, without Foundation's formatters.
public enum NumberFormatting {
    /// `value` with `decimals` digits after the point (`fixed(3.14159, 2)` is "3.14").
    public static func fixed(_ value: Double, _ decimals: Int) -> String {
        guard value.isFinite else { return "\(value)" }
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let scaled = (abs(value) * scale).rounded()
        guard scaled < 9e18 else { return "\(value)" }
        let integer = Int(scaled)
        let (whole, fraction) = integer.quotientAndRemainder(dividingBy: Int(scale))
        let sign = value < 0 && integer != 0 ? "-" : ""
        guard decimals > 0 else { return sign + "\(whole)" }
        let digits = String(fraction)
        return sign + "\(whole)." + String(repeating: "0", count: decimals - digits.count) + digits
    }

    /// `value` with `digits` significant digits (at least as many as its integer part needs).
    public static func significant(_ value: Double, _ digits: Int = 3) -> String {
        guard value.isFinite, value != 0 else { return value == 0 ? "0" : "\(value)" }
        var decimals = digits - 1, magnitude = abs(value)
        while magnitude >= 10, decimals > 0 { magnitude /= 10; decimals -= 1 }
        while magnitude < 1, decimals < 12 { magnitude *= 10; decimals += 1 }
        return fixed(value, decimals)
    }
}
