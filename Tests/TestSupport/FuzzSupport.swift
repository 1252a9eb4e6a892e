// Shared pieces of the input fuzz tests (issue 14 "Done when"): seeded byte and text mutations, an outcome tally
// with a per-input time bound, and a watchdog that ends a hung run naming the input, instead of letting CI stall.
// The checkpoint fuzz test (CheckpointsTests/CheckpointFuzzTests.swift) predates these and keeps its own copy.
import Foundation
import Testing
import Tensors

/// Seeded mutations of a byte string or a text: the usual fuzzing moves (bit flips, truncation, insertion,
/// deletion, duplication, splicing with another valid input, integer fields set to boundary values) and, for
/// text, moves that keep it text-like (numbers replaced by hostile ones, lines dropped, duplicated, re-indented,
/// line ends changed, NULs, huge lines and bytes that are not UTF-8).
public struct FuzzMutator {
  public var rng: SplitMix64

  public init(seed: UInt64) { rng = SplitMix64(seed: seed) }

  /// Values an integer field is set to: edges of every width, and huge.
  public static let hostileIntegers: [UInt64] = [0, 1, 2, 7, 8, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff,
                                                 0x1_0000, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff, 1 << 32, 1 << 40,
                                                 1 << 62, UInt64(Int.max), .max]

  /// Text that replaces a number: huge, negative, zero, not finite, not a number at all.
  public static let hostileNumbers = ["0", "-1", "-0", "1e308", "-1e308", "1e400", "nan", ".nan", "NaN", "inf",
                                      ".inf", "-.inf", "Infinity", "4294967296", "9223372036854775807",
                                      "9223372036854775808", "-9223372036854775809", "18446744073709551616",
                                      "65535", "100000", "0x7fffffff", "1_000", "0.0000001", "5e-324", "\"7\"",
                                      "seven", "~", "null", "true", "[]", "{}", "''", "1 2", "12abc", "١٢"]

  /// Text inserted at random: structure characters of YAML and XML, control characters, line ends.
  public static let hostileSnippets = ["\0", "\r\n", "\r", "\n", "\t", " ", ":", ": ", "- ", "#", "&a ", "*a", "!!",
                                       "{", "}", "[", "]", "\"", "'", "|", ">", "<", "</", "/>", "&amp;", "&#0;",
                                       "&#xFFFF;", "<![CDATA[", "]]>", "<?x?>", "<!--", "-->", "\u{FEFF}", "é", "\u{0}\u{0}",
                                       "\u{85}", "\u{2028}", "%YAML 1.1\n---\n", "---\n", "...\n", "? ", "<<: *a\n"]

  public mutating func int(_ range: Range<Int>) -> Int { Int.random(in: range, using: &rng) }
  public mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &rng) }
  public mutating func pick<T>(_ choices: [T]) -> T { choices[int(0..<choices.count)] }
  public mutating func chance(_ probability: Double) -> Bool { Double.random(in: 0..<1, using: &rng) < probability }

  /// One to three byte-level moves on `original`; `donors` are other valid inputs to splice from.
  public mutating func mutateBytes(_ original: [UInt8], donors: [[UInt8]] = []) -> [UInt8] {
    var bytes = original
    for _ in 0..<int(1...3) { bytes = oneByteMove(bytes, donors: donors) }
    return bytes
  }

  private mutating func oneByteMove(_ original: [UInt8], donors: [[UInt8]]) -> [UInt8] {
    var bytes = original
    guard !bytes.isEmpty else { return [UInt8.random(in: 0...255, using: &rng)] }
    switch int(0..<9) {
    case 0:  // flip 1–4 bits
      for _ in 0..<int(1...4) { bytes[int(0..<bytes.count)] ^= 1 << UInt8(int(0...7)) }
    case 1:  // truncate
      bytes.removeLast(int(1...bytes.count))
    case 2:  // insert 1–8 random bytes
      let insertion = (0..<int(1...8)).map { _ in UInt8.random(in: 0...255, using: &rng) }
      bytes.insert(contentsOf: insertion, at: int(0...bytes.count))
    case 3:  // delete 1–16 bytes
      let start = int(0..<bytes.count)
      bytes.removeSubrange(start..<min(bytes.count, start + int(1...16)))
    case 4:  // duplicate a range in place (repeated segments, markers, chunks)
      let start = int(0..<bytes.count)
      let range = start..<min(bytes.count, start + int(1...64))
      bytes.insert(contentsOf: Array(bytes[range]), at: int(0...bytes.count))
    case 5:  // splice: this input's head with another valid input's tail
      let donor = donors.isEmpty ? original : pick(donors)
      guard !donor.isEmpty else { return bytes }
      bytes = Array(bytes[..<int(0...bytes.count)]) + Array(donor[int(0..<donor.count)...])
    case 6:  // a byte set to a boundary value
      bytes[int(0..<bytes.count)] = pick([0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff])
    default:  // a 1-, 2-, 4- or 8-byte field, little- or big-endian, set to a boundary value or the input's size ± 1
      let width = pick([1, 2, 4, 8])
      guard bytes.count >= width else { return bytes }
      let offset = int(0...(bytes.count - width))
      let sizes = [UInt64(bytes.count) - 1, UInt64(bytes.count), UInt64(bytes.count) + 1]
      writeInteger(pick(Self.hostileIntegers + sizes), width: width, bigEndian: chance(0.5), at: offset, in: &bytes)
    }
    return bytes
  }

  /// Stores the low `width` bytes of `value` at `offset`.
  public func writeInteger(_ value: UInt64, width: Int, bigEndian: Bool, at offset: Int, in bytes: inout [UInt8]) {
    for i in 0..<width {
      let shift = UInt64(8 * (bigEndian ? width - 1 - i : i))
      bytes[offset + i] = UInt8(truncatingIfNeeded: value >> shift)
    }
  }

  /// One to three text-level moves (or, one time in five, byte-level moves) on UTF-8 text; the result may be
  /// any bytes (not UTF-8, NULs, huge lines).
  public mutating func mutateText(_ original: [UInt8], donors: [[UInt8]] = []) -> [UInt8] {
    if chance(0.2) { return mutateBytes(original, donors: donors) }
    var text = original
    for _ in 0..<int(1...3) { text = oneTextMove(text, donors: donors) }
    return text
  }

  private mutating func oneTextMove(_ text: [UInt8], donors: [[UInt8]]) -> [UInt8] {
    var lines = text.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map(Array.init)
    switch int(0..<12) {
    case 0, 1:  // a number replaced by a hostile one
      let digits = text.indices.filter { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(text[$0]) }
      guard let start = digits.isEmpty ? nil : pick(digits) else { return text }
      var (from, to) = (start, start)
      let numberBytes = Array("0123456789.-+eE".utf8)
      while from > 0 && numberBytes.contains(text[from - 1]) { from -= 1 }
      while to < text.count && numberBytes.contains(text[to]) { to += 1 }
      return Array(text[..<from]) + Array(pick(Self.hostileNumbers).utf8) + Array(text[to...])
    case 2:  // a line dropped
      guard !lines.isEmpty else { return text }
      lines.remove(at: int(0..<lines.count))
    case 3:  // a line duplicated (duplicate keys, repeated elements)
      guard !lines.isEmpty else { return text }
      let index = int(0..<lines.count)
      lines.insert(lines[index], at: int(0...lines.count))
    case 4:  // a line re-indented (YAML nesting deepened or broken)
      guard !lines.isEmpty else { return text }
      let index = int(0..<lines.count)
      lines[index] = Array(String(repeating: pick([" ", "  ", "    ", "\t"]), count: int(1...40)).utf8)
        + lines[index].drop { $0 == UInt8(ascii: " ") }
    case 5:  // two lines swapped
      guard lines.count >= 2 else { return text }
      lines.swapAt(int(0..<lines.count), int(0..<lines.count))
    case 6:  // a hostile snippet inserted
      let snippet = Array(pick(Self.hostileSnippets).utf8)
      var result = text
      result.insert(contentsOf: snippet, at: int(0...text.count))
      return result
    case 7:  // line ends changed to CRLF or CR
      let end: [UInt8] = chance(0.7) ? [13, 10] : [13]
      return Array(lines.joined(separator: end))
    case 8:  // a huge line of one character: 4 KiB, 64 KiB, rarely 1 MiB (kept rare: the run has a time budget)
      let count = chance(0.02) ? 1 << 20 : pick([1 << 12, 1 << 16])  // 1 MiB lines rarely: each costs ~1 s in debug
      let huge = [UInt8](repeating: pick(Array("a 0-[{<:#".utf8)), count: count)
      lines.insert(huge, at: int(0...lines.count))
    case 9:  // bytes that are not UTF-8 (lone continuation bytes, overlong forms, surrogates, 0xFF)
      var result = text
      result.insert(contentsOf: pick([[0xff], [0x80], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80],
                                      [0xe2, 0x82]]), at: int(0...text.count))
      return result
    case 10:  // truncated at a random point
      return Array(text[..<int(0...text.count)])
    default:  // a line from another valid input spliced in
      let donor = donors.isEmpty ? text : pick(donors)
      let donorLines = donor.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
      guard !donorLines.isEmpty else { return text }
      lines.insert(Array(pick(donorLines)), at: int(0...lines.count))
    }
    return Array(lines.joined(separator: [UInt8(ascii: "\n")]))
  }
}

/// The tally of one fuzz run: inputs that decoded, inputs refused with an expected error, and the rest (wrong
/// error types, errors that do not name the input, inputs slower than the bound), with the first few kept.
public struct FuzzOutcomes {
  public var decoded = 0, refused = 0
  public var slowest: Duration = .zero
  public var problems: [String] = []
  public let perInputBound: Duration

  public init(perInputBound: Duration = .seconds(2)) { self.perInputBound = perInputBound }

  public var total: Int { decoded + refused + problems.count }

  /// FUZZ_TRACE=1 names each input on standard error before it runs and keeps it in a file (see
  /// `FuzzWatchdog.currentInputFile`), so that a crash, which ends the process before any tally is printed, leaves
  /// the input that caused it behind.
  static let tracesInputs = ProcessInfo.processInfo.environment["FUZZ_TRACE"] != nil

  /// Runs `decode` under `watchdog`; `isExpected` says whether a thrown error is a clean one (the reader's typed
  /// error, naming the input).
  public mutating func run(_ label: @autoclosure () -> String, input: [UInt8], watchdog: FuzzWatchdog,
                           isExpected: (any Error) -> Bool, _ decode: () throws -> Void) {
    if Self.tracesInputs { FileHandle.standardError.write(Data("fuzz input: \(label())\n".utf8)) }
    let start = ContinuousClock.now
    watchdog.begin(input)
    do {
      try decode()
      decoded += 1
    } catch {
      if isExpected(error) {
        refused += 1
      } else {
        note("\(label()): \(type(of: error)): \(String(describing: error).prefix(300))")
      }
    }
    watchdog.end()
    let elapsed = ContinuousClock.now - start
    slowest = max(slowest, elapsed)
    if elapsed > perInputBound { note("\(label()): took \(elapsed), more than \(perInputBound)") }
  }

  private mutating func note(_ problem: String) {
    if problems.count < 5 { problems.append(problem) } else { problems.append("…") }
  }

  /// Every input decoded or was refused cleanly, in time, and at least `minimumRefused` were refused (most
  /// mutations must be noticed, or the fuzzing reaches nothing).
  public func check(inputs: Int, minimumRefused: Int, _ name: String,
                    sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(decoded + refused == inputs, "\(name): \(problems.prefix(6))", sourceLocation: sourceLocation)
    #expect(refused >= minimumRefused, "\(name): only \(refused) of \(inputs) inputs were refused",
            sourceLocation: sourceLocation)
    print("fuzz \(name): \(inputs) inputs, \(decoded) decoded, \(refused) refused, slowest \(slowest)")
  }
}

/// Ends the test process when one input runs longer than `limit`, after writing the input to a file and naming it
/// on standard error: a hang then fails the run with the input to reproduce it, rather than stalling CI.
public final class FuzzWatchdog: @unchecked Sendable {
  private let lock = NSLock()
  private var input: [UInt8] = []
  private var started: ContinuousClock.Instant?
  private var stopped = false
  private let name: String
  private let limit: Duration

  public init(_ name: String, limit: Duration = .seconds(20)) {
    self.name = name
    self.limit = limit
    let thread = Thread { [weak self] in
      while let watchdog = self, watchdog.poll() { Thread.sleep(forTimeInterval: 0.25) }
    }
    thread.start()
  }

  deinit { stop() }

  public func stop() { lock.withLock { stopped = true } }

  func begin(_ input: [UInt8]) {
    if FuzzOutcomes.tracesInputs { try? Data(input).write(to: currentInputFile) }
    lock.withLock { (self.input, started) = (input, .now) }
  }

  /// Where FUZZ_TRACE=1 keeps the input being run, to reproduce a crash.
  var currentInputFile: URL {
    FileManager.default.temporaryDirectory.appendingPathComponent("fuzz-current-\(name).bin")
  }
  func end() { lock.withLock { started = nil } }

  /// False once stopped; ends the process when the current input is over the limit.
  private func poll() -> Bool {
    lock.lock()
    let (start, input, stopped) = (started, self.input, self.stopped)
    lock.unlock()
    if stopped { return false }
    if let start, ContinuousClock.now - start > limit {
      let file = FileManager.default.temporaryDirectory.appendingPathComponent("fuzz-hang-\(name)-\(getpid()).bin")
      try? Data(input).write(to: file)
      FileHandle.standardError.write(Data("fuzz \(name): one input ran longer than \(limit); saved to \(file.path)\n".utf8))
      abort()
    }
    return true
  }
}
