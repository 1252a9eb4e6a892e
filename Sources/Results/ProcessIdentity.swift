// Which process wrote a run, and whether it is still alive, so a crashed run reads as died, not running.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Host, pid and (on Linux) start time of a process.
struct ProcessIdentity {
  var host: String
  var pid: Int32
  var start: Int64?

  static var current: ProcessIdentity {
    let pid = getpid()
    return ProcessIdentity(host: ProcessInfo.processInfo.hostName, pid: pid, start: startTicks(of: pid))
  }

  /// Fields 3… of `/proc/PID/stat` (state, ppid, …); nil without /proc.
  private static func statFields(of pid: Int32) -> [Substring]? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let closing = text.lastIndex(of: ")") else { return nil }
    // The command name (field 2) may hold spaces; fields after ")" start at field 3.
    return text[text.index(after: closing)...].split(separator: " ")
  }

  /// Field 22 of `/proc/PID/stat`: the start time in clock ticks after boot; nil without /proc.
  static func startTicks(of pid: Int32) -> Int64? {
    guard let fields = statFields(of: pid) else { return nil }
    return fields.count > 19 ? Int64(fields[19]) : nil
  }

  /// Whether `pid` names a live process on this host that started at `start` (when known). A zombie (state Z or
  /// X: exited, not yet reaped) is dead: a rank that mpirun ended stays one for a moment after mpirun exits,
  /// until init reaps it, and a `--resume auto` started then must read its run as died.
  static func isAlive(pid: Int32, start: Int64?) -> Bool {
    guard pid > 0 else { return false }
    if kill(pid, 0) != 0 && errno != EPERM { return false }
    if let state = statFields(of: pid)?.first, state == "Z" || state == "X" { return false }
    if let start, let actual = startTicks(of: pid) { return actual == start }
    return true
  }
}
