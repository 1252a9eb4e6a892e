// Options every working command shares, the list types options parse into, and the error of commands that are
// not built yet.
import ArgumentParser
import Tensors

/// `--threads`, `--seed` and `--db`, shared through `@OptionGroup`.
struct CommonOptions: ParsableArguments {
  @Option(help: "Worker threads for the kernels and OpenBLAS: 1…\(Threads.maximum); 0 uses all active cores.")
  var threads: Int = 0

  @Option(help: "Seed of every random draw (initialisation, augmentation, data order); default: the config's (0).")
  var seed: UInt64?

  @Option(help: "The SQLite results database.")
  var db: String = "results/simsiam.sqlite"

  func validate() throws {
    try validateThreads(threads)
  }

  /// Applies `--threads` to the engine (refused with a `ThreadStartError` naming threads and memory when the
  /// process cannot start that many) and tunes the allocator; call once, before any kernel runs.
  func configureThreads() throws {
    try Threads.start(threads)
    Allocator.retainFreedMemory()
  }
}

/// `--threads` in 0 (all active cores)…`Threads.maximum`, for every command that takes it.
func validateThreads(_ threads: Int) throws {
  guard (0...Threads.maximum).contains(threads) else {
    throw ValidationError(ThreadStartError.outOfRange(requested: threads, maximum: Threads.maximum).description)
  }
}

/// A comma-separated option value: `--costs 1,10,100`, `--low-shot-k 1,2,4`.
struct CommaSeparated<Element: ExpressibleByArgument>: ExpressibleByArgument {
  var values: [Element]

  init(_ values: [Element]) { self.values = values }

  init?(argument: String) {
    let parts = argument.split(separator: ",", omittingEmptySubsequences: false)
      .map { Element(argument: $0.trimmingCharacters(in: .whitespaces)) }
    guard !parts.isEmpty, parts.allSatisfy({ $0 != nil }) else { return nil }
    values = parts.map { $0! }
  }

  var defaultValueDescription: String { values.map { "\($0)" }.joined(separator: ",") }
}

/// A command whose work lands in a later version: it says so and exits with a failure status.
struct NotImplementedYet: Error, CustomStringConvertible {
  var command: String

  var description: String {
    "`simsiam-bench \(command)` is not implemented yet in this version (\(SimSiamBench.version)). "
      + "`simsiam-bench --help` lists the commands; those marked \"(not implemented yet)\" are still being built."
  }
}
