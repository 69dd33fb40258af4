#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

#if canImport(Glibc)
private let streamSocket = Int32(SOCK_STREAM.rawValue)
private let noSignal = Int32(MSG_NOSIGNAL)
#else
private let streamSocket = SOCK_STREAM
private let noSignal: Int32 = 0
#endif

/// A plain HTTP/1.1 client over a loopback TCP socket, written for the server tests: it sends exactly the
/// bytes it is given (malformed or oversized ones too), reads a `Content-Length` or chunked answer, or reads a
/// stream piece by piece and hangs up in the middle.
///
/// Blocking, so each client runs on a thread of its own (``run(_:)``), never on the threads of Swift's
/// concurrency pool, which the server's handlers need.
final class HTTPTestClient: @unchecked Sendable {
    private let descriptor: Int32
    private var pending: [UInt8] = []

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    struct Head {
        let status: Int
        /// Header names in lower case.
        let headers: [String: String]
    }

    init(port: Int) throws {
        descriptor = socket(AF_INET, streamSocket, 0)
        guard descriptor >= 0 else { throw Failure(description: "socket() failed: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            close(descriptor)
            throw Failure(description: "connect() to port \(port) failed: errno \(errno)")
        }
    }

    deinit { close(descriptor) }

    /// Runs `body` on a new thread and returns what it returned.
    static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try body() }) }.start()
        }
    }

    /// Sends a request with `body` and a matching `Content-Length` (unless `headers` sets the framing).
    func request(_ method: String, _ path: String, body: [UInt8] = [], headers: [String: String] = [:]) throws {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        var fields = headers
        if fields["Transfer-Encoding"] == nil, fields["Content-Length"] == nil, method == "POST" { fields["Content-Length"] = "\(body.count)" }
        for (name, value) in fields.sorted(by: { $0.key < $1.key }) { head += "\(name): \(value)\r\n" }
        try write(Array((head + "\r\n").utf8) + body)
    }

    func write(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let result = bytes[sent...].withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, noSignal) }
            guard result > 0 else { throw Failure(description: "send() failed: errno \(errno)") }
            sent += result
        }
    }

    /// The status line and headers.
    func readHead() throws -> Head {
        let statusLine = try readLine()
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, let status = Int(parts[1]) else { throw Failure(description: "bad status line '\(statusLine)'") }
        var headers: [String: String] = [:]
        while true {
            let line = try readLine()
            if line.isEmpty { break }
            guard let colon = line.firstIndex(of: ":") else { throw Failure(description: "bad header '\(line)'") }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return Head(status: status, headers: headers)
    }

    /// A whole answer: head and body.
    func readResponse() throws -> (head: Head, body: [UInt8]) {
        let head = try readHead()
        if let length = head.headers["content-length"].flatMap({ Int($0) }) { return (head, try read(count: length)) }
        guard head.headers["transfer-encoding"] == "chunked" else { throw Failure(description: "no body framing in \(head.headers)") }
        var body: [UInt8] = []
        while let chunk = try readChunk() { body += chunk }
        return (head, body)
    }

    /// The next chunk of a chunked body; nil after the last.
    func readChunk() throws -> [UInt8]? {
        let sizeLine = try readLine()
        guard let size = Int(sizeLine.split(separator: ";")[0], radix: 16) else { throw Failure(description: "bad chunk size '\(sizeLine)'") }
        let chunk = try read(count: size)
        _ = try readLine()
        return size == 0 ? nil : chunk
    }

    /// Closes the connection at once (the client goes away).
    func hangUp() { shutdown(descriptor, Int32(SHUT_RDWR)) }

    private func fill() throws {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { throw Failure(description: count == 0 ? "the server closed the connection" : "recv() failed: errno \(errno)") }
        pending += buffer[..<count]
    }

    private func read(count: Int) throws -> [UInt8] {
        while pending.count < count { try fill() }
        defer { pending.removeFirst(count) }
        return Array(pending[..<count])
    }

    private func readLine() throws -> String {
        while true {
            if let end = pending.firstIndex(of: 0x0A) {
                let line = pending[..<end].last == 0x0D ? pending[..<(end - 1)] : pending[..<end]
                defer { pending.removeFirst(end + 1) }
                return String(decoding: line, as: UTF8.self)
            }
            try fill()
        }
    }
}
