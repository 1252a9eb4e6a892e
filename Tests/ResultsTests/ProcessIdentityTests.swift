import Foundation
import Testing
@testable import Results
#if canImport(Glibc)
import Glibc
#endif

/// Whether a run's writer is alive decides `running` vs `died` (and whether `--resume` may continue the row).
@Suite struct ProcessIdentityTests {
  @Test func thisProcessIsAliveAndAnotherStartTimeIsNot() {
    let me = ProcessIdentity.current
    #expect(ProcessIdentity.isAlive(pid: me.pid, start: me.start))
    #expect(!ProcessIdentity.isAlive(pid: me.pid, start: me.start.map { $0 + 1 }))
    #expect(!ProcessIdentity.isAlive(pid: 0, start: nil))
  }

  /// An exited child not yet reaped (a zombie: what an mpirun rank is for a moment after mpirun exits) is dead,
  /// although kill(pid, 0) still succeeds for it.
  @Test(.enabled(if: FileManager.default.fileExists(atPath: "/proc/self/stat"), "needs /proc (Linux)"))
  func anExitedUnreapedChildIsDead() throws {
    var pid: pid_t = 0
    let arguments: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/true"), nil]
    defer { arguments.forEach { free($0) } }
    try #require(posix_spawn(&pid, "/bin/true", nil, nil, arguments, environ) == 0)
    let start = ProcessIdentity.startTicks(of: pid)
    // Wait (≤ 5 s) until the child has exited: its state turns Z while it stays unreaped.
    let deadline = Date().addingTimeInterval(5)
    var state = ""
    repeat {
      let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
      state = stat.lastIndex(of: ")").map { String(stat[stat.index($0, offsetBy: 2)]) } ?? ""
      if state != "Z" { usleep(10_000) }
    } while state != "Z" && Date() < deadline
    #expect(state == "Z")
    #expect(kill(pid, 0) == 0, "a zombie still answers kill(pid, 0)")
    #expect(!ProcessIdentity.isAlive(pid: pid, start: start))
    var status: Int32 = 0
    waitpid(pid, &status, 0)
  }
}
