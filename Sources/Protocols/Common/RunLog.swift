// The one log and progress reporter of every long loop (pretraining iterations, feature extraction, probe epochs,
// SVM fits, kNN queries): a run's log.txt with time-stamped lines, echoed to standard output, and a progress line
// that is rewritten in place on a terminal and written every `interval` seconds otherwise (CI, `| tee`), with
// rate and ETA. All of it is safe to call from worker threads (the SVM stages report from their fit workers).
import Foundation
import Synchronization

/// Standard output shared by the log and the live progress line.
public enum Console {
  /// True when standard output is a terminal: progress goes to a live line instead of periodic plain lines.
  public static let isTerminal = isatty(STDOUT_FILENO) == 1
  /// Whether the cursor sits at the end of a live progress line (which the next plain line must clear first).
  private static let liveLineShown = Mutex(false)

  /// Prints `line` on a line of its own, clearing a live progress line first.
  public static func printLine(_ line: String) {
    liveLineShown.withLock { shown in
      if shown { print("\r\u{1B}[2K", terminator: ""); shown = false }
      print(line)
      fflush(nil)  // a pipe (CI, `| tee`) is block-buffered: show each line when it is written
    }
  }

  /// Replaces the live progress line by `text` (terminals only).
  public static func showLive(_ text: String) {
    liveLineShown.withLock { shown in
      print("\r\u{1B}[2K" + text, terminator: "")
      fflush(nil)  // all output streams (stdout itself is not concurrency-safe to name)
      shown = true
    }
  }

  /// `m:ss`, or `h:mm:ss` from an hour on; "?" for a non-finite estimate.
  public static func duration(_ seconds: Double) -> String {
    guard seconds.isFinite else { return "?" }
    let total = Int(seconds.rounded())
    return total >= 3600 ? String(format: "%d:%02d:%02d", total / 3600, total / 60 % 60, total % 60)
      : String(format: "%d:%02d", total / 60, total % 60)
  }
}

/// Appends time-stamped lines to a run's `log.txt` and echoes them to standard output.
public final class LogFile: Sendable {
  private let handle: Mutex<FileHandle>
  public let url: URL

  /// Opens (or creates) `url` for appending. The error names the file.
  public init(_ url: URL) throws {
    self.url = url
    do {
      if !FileManager.default.fileExists(atPath: url.path) {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(),
                                                withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: url.path, contents: nil)
      }
      let handle = try FileHandle(forWritingTo: url)
      try handle.seekToEnd()
      self.handle = Mutex(handle)
    } catch {
      throw ProtocolError.unwritable(path: url.path, reason: "\(error.localizedDescription)")
    }
  }

  /// Writes a time-stamped line to the file and, unless `echo` is false, the line to standard output.
  public func write(_ line: String, echo: Bool = true) {
    let stamp = ISO8601DateFormatter().string(from: Date())
    handle.withLock { try? $0.write(contentsOf: Data("\(stamp) \(line)\n".utf8)) }
    if echo { Console.printLine(line) }
  }
}

/// Progress of a long loop, for the CLI user and the log.
///
/// On a terminal every update rewrites one live line; otherwise a plain line goes to the log (and standard output)
/// at most every `interval` seconds, and always when a phase or stage ends. The rate and ETA count from the
/// phase's start (`begin()`, or the first update of a new `stage`), so units resumed from a journal do not inflate
/// the rate.
public final class ProgressReporter: Sendable {
  public let log: LogFile
  /// Seconds between plain progress lines when standard output is not a terminal.
  public let interval: Double

  private struct State {
    var lastLine = -Double.infinity
    var phaseStart = 0.0
    var stage = ""
    var stageFirstDone = 0
  }
  private let state: Mutex<State>

  public init(log: LogFile, interval: Double = 10) {
    self.log = log
    self.interval = interval
    state = Mutex(State(phaseStart: Self.now()))
  }

  private static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

  /// Restarts the rate clock: a new phase.
  public func begin() {
    state.withLock { $0.phaseStart = Self.now(); $0.lastLine = -.infinity; $0.stage = "" }
  }

  /// Shows `text` as the current progress; `final` forces a plain line (the end of a phase).
  public func show(_ text: String, final: Bool = false) {
    let writesLine = state.withLock { state -> Bool in
      let now = Self.now()
      guard now - state.lastLine >= interval || final else { return false }
      state.lastLine = now
      return true
    }
    if Console.isTerminal { Console.showLive(text) }
    if writesLine { log.write(text, echo: !Console.isTerminal) }
  }

  /// "what done/total  R img/s  ETA m:ss" for a counted phase started by `begin()`.
  public func count(_ what: String, done: Int, total: Int, unit: String = "img/s") {
    let elapsed = Self.now() - state.withLock { $0.phaseStart }
    let rate = Double(done) / max(elapsed, 1e-9)
    let eta = Double(total - done) / max(rate, 1e-9)
    show(String(format: "%@ %d/%d  %.1f %@  ETA ", what, done, total, rate, unit) + Console.duration(eta),
         final: done == total)
  }

  /// "stage done/total  elapsed m:ss  ETA m:ss" for a stage of units some of which a journal may already hold
  /// (`resumed`, logged once when the stage starts).
  public func stage(_ name: String, done: Int, total: Int, resumed: Int = 0) {
    let (elapsed, progressed, isNew) = state.withLock { state -> (Double, Int, Bool) in
      let now = Self.now()
      let isNew = state.stage != name
      if isNew {
        state.stage = name
        state.phaseStart = now
        state.stageFirstDone = done
      }
      return (now - state.phaseStart, done - state.stageFirstDone, isNew)
    }
    if isNew && resumed > 0 { log.write("\(name): \(resumed) of \(total) units already done (journal); resuming") }
    let eta = progressed > 0 ? elapsed / Double(progressed) * Double(total - done) : .nan
    show("\(name) \(done)/\(total)  elapsed \(Console.duration(elapsed))  ETA "
           + (eta.isFinite ? Console.duration(eta) : "–"), final: done == total)
  }
}
