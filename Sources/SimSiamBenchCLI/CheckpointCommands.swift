// `simsiam-bench checkpoint …`: safetensors checkpoints.
import ArgumentParser
import Checkpoints
import Foundation

struct Checkpoint: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Inspect safetensors checkpoints.",
    subcommands: [Inspect.self])

  struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Print a safetensors file's tensor and parameter counts, shapes by module, and metadata.",
      discussion: "Reads only the header, so it is fast on large checkpoints and works for any dtype.")

    @Argument(help: "The .safetensors file.")
    var file: String

    @Flag(name: .customLong("tensors"), help: "Also list every tensor with its dtype and shape.")
    var listsTensors = false

    /// The text `run` prints.
    func report() throws -> String {
      try CheckpointSummary(contentsOf: URL(fileURLWithPath: file)).rendered(listingTensors: listsTensors)
    }

    func run() throws { print(try report()) }
  }
}
