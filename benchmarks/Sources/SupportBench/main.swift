// The support layer's libraries against the code they replaced (issue 13 item 5): SHA-256 through OpenSSL vs the old
// pure-Swift SHA-256, on a 1 GB file, and gzip inflate through zlib vs the old hand-written decoder, on Fashion-MNIST's
// training images; `sha256sum`, Python's hashlib, `gzip -dc` and Python's gzip module as references. The old code is
// kept in this target only (LegacySHA256.swift, LegacyGzip.swift). Checks that old and new agree before timing.
//
//   swift build -c release && .build/release/SupportBench [--file PATH] [--megabytes 1000] [--repeats 3]
//       [--idx PATH] [--skip-legacy] [--python python3]
import Dispatch
import Foundation
import Support

struct Options {
  var file = "/tmp/simsiam-supportbench.bin"
  var megabytes = 1000
  var repeats = 3
  var idx = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"
  var legacy = true
  var python = "python3"

  static let usage = """
    usage: SupportBench [--file PATH] [--megabytes N] [--repeats N] [--idx PATH] [--skip-legacy] [--python PATH]
      --file PATH      file to hash; written with N MB of pseudo-random bytes when missing (default \(Options().file))
      --megabytes N    size of that file in MB = 10^6 bytes (default 1000)
      --repeats N      timed runs per case; the table shows the best and the median (default 3)
      --idx PATH       gzip file to inflate (default Fashion-MNIST's train images, Debian dataset-fashion-mnist)
      --skip-legacy    skip the old pure-Swift SHA-256 on the big file (about 20-40 s per run)
      --python PATH    Python for the hashlib / gzip references (default python3)
    """

  /// The options, or exits: 0 after printing usage for --help, 2 with a message for a bad argument.
  static func parse(_ arguments: [String]) -> Options {
    var options = Options()
    var iterator = arguments.dropFirst().makeIterator()
    func fail(_ message: String) -> Never {
      FileHandle.standardError.write(Data("SupportBench: \(message)\n\(usage)\n".utf8))
      exit(2)
    }
    while let argument = iterator.next() {
      switch argument {
      case "--help", "-h":
        print(usage)
        exit(0)
      case "--skip-legacy":
        options.legacy = false
        continue
      case "--file", "--idx", "--python", "--megabytes", "--repeats": break
      default: fail("unknown option \(argument)")
      }
      guard let value = iterator.next() else { fail("\(argument) needs a value") }
      switch argument {
      case "--file": options.file = value
      case "--idx": options.idx = value
      case "--python": options.python = value
      case "--megabytes", "--repeats":
        guard let number = Int(value), number > 0 else { fail("\(argument) needs a positive integer") }
        if argument == "--megabytes" { options.megabytes = number } else { options.repeats = number }
      default: fail("unknown option \(argument)")
      }
    }
    return options
  }
}

func say(_ line: String) {
  print(line)
  fflush(nil)
}

/// CPU seconds used so far by this process and by its waited-for children (user + system). On a shared machine
/// the wall time depends on the other jobs; the CPU time of single-threaded work much less.
func cpuSeconds() -> Double {
  var total = 0.0
  for who in [RUSAGE_SELF, RUSAGE_CHILDREN] {
    var usage = rusage()
    getrusage(__rusage_who_t(who.rawValue), &usage)
    total += Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
      + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
  }
  return total
}

struct Timing {
  var best: Double  // wall seconds
  var median: Double
  var cpu: Double  // CPU seconds of the run with the least CPU time
}

/// Wall and CPU time of `repeats` runs of `body`, which returns a check value that must be the same every run.
func measure<T: Equatable>(_ repeats: Int, _ body: () throws -> T) rethrows -> (timing: Timing, value: T) {
  var walls: [Double] = []
  var cpus: [Double] = []
  var value: T?
  for _ in 0..<repeats {
    let start = DispatchTime.now()
    let cpuStart = cpuSeconds()
    let result = try body()
    cpus.append(cpuSeconds() - cpuStart)
    walls.append(Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9)
    precondition(value == nil || value == result, "Two runs of one case gave different results.")
    value = result
  }
  walls.sort()
  return (Timing(best: walls[0], median: walls[walls.count / 2], cpu: cpus.min()!), value!)
}

/// Runs a command, returns its standard output (trimmed); stops on failure.
func run(_ arguments: [String]) -> String {
  let process = Process()
  process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
  process.arguments = arguments
  let pipe = Pipe()
  process.standardOutput = pipe
  do { try process.run() } catch { fatalError("cannot run \(arguments): \(error)") }
  let output = pipe.fileHandleForReading.readDataToEndOfFile()
  process.waitUntilExit()
  precondition(process.terminationStatus == 0, "\(arguments.joined(separator: " ")) failed")
  return String(decoding: output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
}

func row(_ name: String, bytes: Int, _ timing: Timing) -> String {
  let mb = Double(bytes) / 1e6
  func f(_ x: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", x) }
  return "| \(name) | \(f(timing.best, 3)) / \(f(timing.median, 3)) | \(f(timing.cpu, 3)) | "
    + "\(f(mb / timing.best, 0)) | \(f(mb / timing.cpu, 0)) |"
}

let header = "| implementation | wall s, best / median | CPU s | MB/s (wall) | MB/s per CPU s |\n|---|---|---|---|---|"

let options = Options.parse(CommandLine.arguments)
let fileURL = URL(fileURLWithPath: options.file)
let size = options.megabytes * 1_000_000

// MARK: - Correctness first

do {
  var generator = SystemRandomNumberGenerator()
  let sample = (0..<(3 << 20) + 17).map { _ in UInt8.random(in: 0...255, using: &generator) }
  precondition(SHA256.hexDigest(of: sample) == LegacySHA256.hexDigest(of: sample), "old and new SHA-256 disagree")
  precondition(SHA256.hexDigest(of: Array("abc".utf8))
                 == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "SHA-256 of 'abc' is wrong")
}

// MARK: - SHA-256 of a big file

if (try? FileManager.default.attributesOfItem(atPath: fileURL.path)[.size] as? Int) != size {
  say("writing \(options.megabytes) MB of pseudo-random bytes to \(fileURL.path) …")
  try AtomicFile.write(to: fileURL) { handle in
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    var block = [UInt64](repeating: 0, count: 1 << 17)  // 1 MiB
    var written = 0
    while written < size {
      for i in block.indices {  // SplitMix64
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        block[i] = z ^ (z >> 31)
      }
      let count = min(size - written, block.count * 8)
      try block.withUnsafeBytes { try handle.write(contentsOf: Data($0.prefix(count))) }
      written += count
    }
  }
}
_ = try SHA256.hexDigest(ofFileAt: fileURL)  // warm the page cache: every case below reads from memory

say("machine: \(ProcessInfo.processInfo.activeProcessorCount) cores, load \(run(["cat", "/proc/loadavg"])); "
      + "\(SHA256.openSSLVersion), zlib \(Gzip.zlibVersion)")
say("\nSHA-256 of \(fileURL.path) (\(size) bytes, in the page cache), \(options.repeats) runs:\n")
say(header)
let streamed = try measure(options.repeats) { try SHA256.hexDigest(ofFileAt: fileURL) }
say(row("Support.SHA256, `hexDigest(ofFileAt:)` (4 MiB reads)", bytes: size, streamed.timing))
let hashing = try measure(options.repeats) { try readFileHashing(fileURL).sha256Hex }
say(row("Support `readFileHashing` (whole file into memory + hash, one pass)", bytes: size, hashing.timing))
precondition(hashing.value == streamed.value, "readFileHashing and hexDigest(ofFileAt:) disagree")
let twoPasses = try measure(options.repeats) { () -> String in
  let data = try Data(contentsOf: fileURL)
  return SHA256.hexDigest(of: data)
}
say(row("`Data(contentsOf:)`, then Support.SHA256 over it (read, then hash)", bytes: size, twoPasses.timing))
precondition(twoPasses.value == streamed.value)
let memory = try Data(contentsOf: fileURL)
let inMemory = measure(options.repeats) { SHA256.hexDigest(of: memory) }
say(row("Support.SHA256 on bytes in memory", bytes: size, inMemory.timing))
precondition(inMemory.value == streamed.value)
let coreutils = measure(options.repeats) { run(["sha256sum", fileURL.path]).prefix(64) }
say(row("`sha256sum` (coreutils)", bytes: size, coreutils.timing))
precondition(String(coreutils.value) == streamed.value, "sha256sum disagrees: \(coreutils.value)")
let script = "import hashlib,sys\nh=hashlib.sha256()\nf=open(sys.argv[1],'rb')\n"
  + "for b in iter(lambda: f.read(4<<20), b''): h.update(b)\nprint(h.hexdigest())"
let hashlib = measure(options.repeats) { run([options.python, "-c", script, fileURL.path]) }
say(row("Python hashlib, 4 MiB reads (incl. interpreter start)", bytes: size, hashlib.timing))
precondition(hashlib.value == streamed.value, "hashlib disagrees")
if options.legacy {
  let legacy = try measure(1) { () -> String in
    var hash = LegacySHA256()
    let handle = try FileHandle(forReadingFrom: fileURL)
    defer { try? handle.close() }
    try hash.update(reading: handle)
    return hash.finalize().map { String(format: "%02x", $0) }.joined()
  }
  say(row("old pure-Swift SHA256, `update(reading:)` (1 run)", bytes: size, legacy.timing))
  precondition(legacy.value == streamed.value, "the old SHA-256 disagrees")
  let slice = memory.prefix(200_000_000)
  let legacyMemory = measure(1) { LegacySHA256.hexDigest(of: slice) }
  say(row("old pure-Swift SHA256 on 200 MB in memory (1 run)", bytes: slice.count, legacyMemory.timing))
  precondition(legacyMemory.value == SHA256.hexDigest(of: slice))
}

// MARK: - Inflate

let compressed = [UInt8](try Data(contentsOf: URL(fileURLWithPath: options.idx)))
let inflated = try Gzip.decompress(compressed, path: options.idx, maximumSize: 1 << 32)
let legacyInflated = try LegacyGzip.decompress(compressed, path: options.idx)
precondition(legacyInflated == inflated, "old and new inflate disagree")
let repeats = max(options.repeats, 5)
say("\ngunzip of \(options.idx) (\(compressed.count) → \(inflated.count) bytes, from memory), \(repeats) runs:\n")
say(header)
let zlib = try measure(repeats) { try Gzip.decompress(compressed, path: options.idx, maximumSize: 1 << 32).count }
say(row("Support.Gzip (zlib \(Gzip.zlibVersion))", bytes: inflated.count, zlib.timing))
let old = try measure(repeats) { try LegacyGzip.decompress(compressed, path: options.idx).count }
say(row("old hand-written inflate (Datasets/Readers/Gzip.swift)", bytes: inflated.count, old.timing))
let gzip = measure(repeats) { run(["sh", "-c", "gzip -dc \"$0\" | wc -c", options.idx]) }
say(row("`gzip -dc | wc -c` (from the page cache)", bytes: inflated.count, gzip.timing))
precondition(Int(gzip.value) == inflated.count)
let pythonGzip = measure(repeats) {
  let script = "import gzip,sys; print(len(gzip.decompress(open(sys.argv[1],'rb').read())))"
  return run([options.python, "-c", script, options.idx])
}
say(row("Python gzip.decompress (incl. interpreter start)", bytes: inflated.count, pythonGzip.timing))
precondition(Int(pythonGzip.value) == inflated.count)
say("\nold / new inflate: \(String(format: "%.2f", old.timing.best / zlib.timing.best))× (wall, best runs), "
      + "\(String(format: "%.2f", old.timing.cpu / zlib.timing.cpu))× (CPU)")
