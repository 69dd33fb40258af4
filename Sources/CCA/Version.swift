/// Facts about this package as a whole.
public enum CCALibrary {
    /// The release of this package (semantic versioning), as `cca --version` prints it.
    public static let version = "0.2.0"
}
