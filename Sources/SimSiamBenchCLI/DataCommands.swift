// `simsiam-bench data …`: check the datasets the pretraining and evaluations read.
import ArgumentParser
import Datasets
import Foundation

struct DataCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "data",
    abstract: "Prepare and verify the datasets the pretraining and evaluations read.",
    subcommands: [Check.self])

  struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Check a dataset before a long run: counts, classes, missing or unreadable files, fingerprint.",
      discussion: """
        Recognises an image folder (root/class/*.jpg), an image-list file (relative path and label per line), a \
        VOC year directory (VOCdevkit/VOC2007), COCO (a directory with annotations/instances_*.json, or one such \
        file), IDX files (MNIST, Fashion-MNIST) and CIFAR binary batches. Images are checked to exist, be non-empty \
        and start like a JPEG or PNG file. The fingerprint is the SHA-256 of the sorted list of \
        "relative path<TAB>size" lines; runs record it as provenance. Exits with status 1 when files are missing \
        or unreadable.
        """)

    enum Format: String, ExpressibleByArgument, CaseIterable {
      case auto, imagefolder, list, voc, coco, idx, cifar
    }

    @Option(help: "The dataset directory, list file or COCO instances json.")
    var data: String

    @Option(help: "The layout: \(Format.allCases.map(\.rawValue).joined(separator: ", ")).")
    var format: Format = .auto

    @Option(help: "The image root of a list file (default: the list file's directory).")
    var root: String?

    @Option(help: "The COCO image directory (default: <coco>/<split> next to annotations/).")
    var images: String?

    @Option(help: "How many missing or unreadable files to list.")
    var list: Int = 10

    func validate() throws {
      guard list >= 0 else { throw ValidationError("--list must be 0 or more, got \(list).") }
      if root != nil && format != .list && format != .auto {
        throw ValidationError("--root applies to --format list only.")
      }
    }

    /// Runs the check; `run` prints `rendered` and fails when the dataset is incomplete.
    func check() throws -> DatasetCheck {
      try DatasetCheck.run(data: URL(fileURLWithPath: data),
                           format: format == .auto ? nil : DatasetFormat(rawValue: format.rawValue),
                           root: root.map { URL(fileURLWithPath: $0) },
                           imageDirectory: images.map { URL(fileURLWithPath: $0) })
    }

    func run() throws {
      let result = try check()
      print(result.rendered(listing: list))
      if !result.isComplete { throw ExitCode.failure }
    }
  }
}
