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

  /// Field 22 of `/proc/PID/stat`: the start time in clock ticks after boot; nil without /proc.
  static func startTicks(of pid: Int32) -> Int64? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let closing = text.lastIndex(of: ")") else { return nil }
    // The command name (field 2) may hold spaces; fields after ")" start at field 3.
    let fields = text[text.index(after: closing)...].split(separator: " ")
    return fields.count > 19 ? Int64(fields[19]) : nil
  }

  /// Whether `pid` names a live process on this host that started at `start` (when known).
  static func isAlive(pid: Int32, start: Int64?) -> Bool {
    guard pid > 0 else { return false }
    if kill(pid, 0) != 0 && errno != EPERM { return false }
    if let start, let actual = startTicks(of: pid) { return actual == start }
    return true
  }
}
