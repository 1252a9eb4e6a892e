import Foundation
import Testing

/// Issue 14 item 5, end to end: the built binary under a 6 GB address-space limit (`ulimit -v 6000000`) with
/// `--threads 64`. Before the fix OpenBLAS's 64 threads each retried their 128 MiB buffer allocation forever and
/// the process never exited; now it must exit at once with a message naming threads and memory.
@Suite(.serialized) struct ThreadStartCommandTests {
  /// Runs the binary under `ulimit -v limitKiB`; kills it (and reports a hang) after `seconds`.
  static func runLimited(_ arguments: [String], limitKiB: Int, seconds: Double) throws
    -> (status: Int32, hung: Bool, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/sh")
    let binary = try #require(PretrainKillResumeTests.binary())
    process.arguments = ["-c", "ulimit -v \(limitKiB) && exec \"$0\" \"$@\"", binary.path] + arguments
    let output = FileManager.default.temporaryDirectory.appendingPathComponent("threads-\(UUID().uuidString).txt")
    FileManager.default.createFile(atPath: output.path, contents: nil)
    defer { try? FileManager.default.removeItem(at: output) }
    let handle = try FileHandle(forWritingTo: output)
    process.standardOutput = handle
    process.standardError = handle
    try process.run()
    let deadline = Date().addingTimeInterval(seconds)
    while process.isRunning && Date() < deadline { usleep(50_000) }
    let hung = process.isRunning
    if hung { kill(process.processIdentifier, SIGKILL) }
    process.waitUntilExit()
    try handle.close()
    return (process.terminationStatus, hung, try String(contentsOf: output, encoding: .utf8))
  }

  @Test(.enabled(if: PretrainKillResumeTests.binaryFound, "the simsiam-bench binary is not built next to the tests"))
  func tooManyThreadsForTheAddressSpaceIsACleanErrorAndTheProcessExits() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("threads-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let result = try Self.runLimited(
      ["selftest", "--threads", "64", "--db", folder.appendingPathComponent("r.sqlite").path],
      limitKiB: 6_000_000, seconds: 60)
    #expect(!result.hung, "still running after 60 s: \(result.output)")
    #expect(result.status != 0)
    #expect(result.output.contains("Cannot start 64 worker threads"), "\(result.output)")
    #expect(result.output.contains("memory") && result.output.contains("ulimit -v"), "\(result.output)")
  }

  @Test(.enabled(if: PretrainKillResumeTests.binaryFound, "the simsiam-bench binary is not built next to the tests"))
  func threadsAboveTheCapAreRefusedByTheParser() throws {
    let result = try Self.runLimited(["selftest", "--threads", "100000"], limitKiB: 6_000_000, seconds: 60)
    #expect(!result.hung && result.status != 0)
    #expect(result.output.contains("--threads must be 0 (all active cores) or 1…256, got 100000."), "\(result.output)")
  }
}
