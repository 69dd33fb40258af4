#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A shared library opened with `dlopen`, whose C functions are looked up by name at run time.
///
/// This is how the package reaches CUDA without linking it: the package builds, and its CPU path runs,
/// on machines with no CUDA at all. Libraries stay open for the life of the process (never `dlclose`d),
/// since the function pointers taken from them are kept in process-wide tables.
struct DynamicLibrary: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer
    /// The candidate that loaded.
    let path: String

    /// Opens the first of `candidates` that loads.
    /// - Throws: ``CUDAError/libraryNotFound(library:tried:hint:)`` listing every candidate and `hint`.
    static func open(_ library: String, candidates: [String], hint: String) throws -> DynamicLibrary {
        for candidate in candidates {
            if let handle = dlopen(candidate, RTLD_NOW | RTLD_LOCAL) { return DynamicLibrary(handle: handle, path: candidate) }
        }
        throw CUDAError.libraryNotFound(library: library, tried: candidates, hint: hint)
    }

    /// The C function called `name` (or the first of `alternatives` that exists), as the function type `F`.
    func function<F>(_ name: String, or alternatives: String...) throws -> F {
        for symbol in [name] + alternatives {
            if let address = dlsym(handle, symbol) { return unsafeBitCast(address, to: F.self) }
        }
        throw CUDAError.symbolNotFound(symbol: name, library: path)
    }
}

/// Where the CUDA libraries may be: the loader's path first, then the CUDA toolkit, then pip wheels.
enum CUDALibrarySearch {
    /// Candidate files for a library: `$environmentVariable` alone when set, otherwise each of `names` as
    /// the loader finds it, in `/usr/local/cuda/lib64`, and in the `lib` folders of pip's NVIDIA wheels
    /// (`nvidia/cu13/lib` for CUDA 13 wheels, `nvidia/<wheelFolder>/lib` for CUDA 12 ones).
    static func candidates(names: [String], environmentVariable: String, wheelFolder: String) -> [String] {
        if let chosen = environment(environmentVariable) { return [chosen] }
        var result = names + names.map { "/usr/local/cuda/lib64/\($0)" }
        for sitePackages in pythonSitePackages() {
            for folder in ["nvidia/cu13/lib", "nvidia/\(wheelFolder)/lib"] {
                result += names.map { "\(sitePackages)/\(folder)/\($0)" }.filter(fileExists)
            }
        }
        return result
    }

    /// Header folders NVRTC may need: `$CCA_CUDA_INCLUDE`, the toolkit's, and those of pip's wheels
    /// (the `include` folder beside the `lib` folder NVRTC was loaded from, and the runtime wheel's).
    static func includeDirectories(besideLibrary libraryPath: String) -> [String] {
        var folders = environment("CCA_CUDA_INCLUDE").map { [$0] } ?? []
        folders.append("/usr/local/cuda/include")
        if let slash = libraryPath.lastIndex(of: "/") {
            let libraryFolder = libraryPath[..<slash]
            if libraryFolder.hasSuffix("/lib"), let parent = libraryFolder.dropLast(4).lastIndex(of: "/") {
                let wheels = libraryFolder[..<parent]
                folders += ["\(libraryFolder.dropLast(4))/include", "\(wheels)/cuda_runtime/include"]
            }
        }
        return folders.filter(fileExists)
    }

    /// Python `site-packages` (and `dist-packages`) folders in the usual places: a virtual environment,
    /// the user's, pyenv's, the system's, and GitHub's hosted tool cache.
    static func pythonSitePackages() -> [String] {
        let home = environment("HOME") ?? "/root"
        var patterns = [
            "\(home)/.local/lib/python3*/site-packages",
            "\(home)/.pyenv/versions/*/lib/python3*/site-packages",
            "/usr/local/lib/python3*/dist-packages", "/usr/local/lib/python3*/site-packages",
            "/usr/lib/python3/dist-packages", "/usr/lib/python3*/site-packages",
            "/opt/*/.venv/lib/python3*/site-packages", "/opt/hostedtoolcache/Python/*/x64/lib/python3*/site-packages",
        ]
        if let venv = environment("VIRTUAL_ENV") { patterns.insert("\(venv)/lib/python3*/site-packages", at: 0) }
        return patterns.flatMap(expand)
    }

    static func environment(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        let string = String(cString: value)
        return string.isEmpty ? nil : string
    }

    static func fileExists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    private static func expand(_ pattern: String) -> [String] {
        var matches = glob_t()
        defer { globfree(&matches) }
        guard glob(pattern, 0, nil, &matches) == 0 else { return [] }
        return (0..<Int(matches.gl_pathc)).compactMap { matches.gl_pathv[$0].map { String(cString: $0) } }
    }
}
