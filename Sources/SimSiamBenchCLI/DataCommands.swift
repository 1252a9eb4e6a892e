// `simsiam-bench data …`: check the datasets the pretraining and evaluations read, make the scene set, preview
// augmentations.
import ArgumentParser
import Support
import Datasets
import Foundation
import Tensors

struct DataCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "data",
    abstract: "Prepare and verify the datasets the pretraining and evaluations read.",
    subcommands: [Check.self, MakeScenes.self, Preview.self])

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

    @Flag(help: ArgumentHelp("Decode every image in full (all cores) to find truncated or corrupt files; without "
                              + "it images are checked by size and magic bytes only."))
    var decode = false

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
                           imageDirectory: images.map { URL(fileURLWithPath: $0) }, decodesImages: decode)
    }

    func run() throws {
      let result = try check()
      print(result.rendered(listing: list))
      if !result.isComplete { throw ExitCode.failure }
    }
  }

  struct MakeScenes: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "make-scenes",
      abstract: "Compose Fashion-MNIST items into multi-object scenes; write a VOC devkit and COCO json of them.",
      discussion: """
        Each scene is 96–256 px wide and high (--min-side, --max-side), on a gradient, sine-grating or blotch \
        background, with 1–4 tinted Fashion-MNIST items (--min-objects, --max-objects) scaled 1×–4× (--min-scale, \
        --max-scale; PIL bilinear). A new object may not leave an earlier one less than 25 % \
        visible, and keeps at least 60 % of itself inside the image. An object is difficult when under 50 % of \
        its pixels are visible (hidden or cut off) or under 120 pixels are visible; truncated when cut by the \
        border. Trainval scenes use the Fashion-MNIST train items, test scenes the t10k items.

        Writes <out>/VOCdevkit/VOC2007 (JPEGImages, Annotations, ImageSets/Main with <class>_<split>.txt for \
        train, val, trainval and test, SegmentationClass palette PNGs with 255 on object outlines, \
        ImageSets/Segmentation) and <out>/annotations/instances_{trainval,test}.json (boxes, areas and \
        compressed-RLE masks of the visible pixels; file_name relative to <out>). The same seed gives the same \
        bytes. Classes: \(SceneItems.fashionMNISTClassNames.joined(separator: ", ")).
        """)

    enum Size: String, ExpressibleByArgument, CaseIterable {
      case `default`, small
    }

    @Option(help: "The output directory; it must not already hold VOCdevkit/VOC2007 or annotations/instances_*.json.")
    var out: String

    @Option(help: "Seed of the scene set.")
    var seed: UInt64 = 0

    @Option(help: "default: 5011 trainval + 4952 test (VOC2007's sizes); small: 40 + 40.")
    var size: Size = .default

    @Option(help: "Trainval scenes (overrides --size).")
    var train: Int?

    @Option(help: "Test scenes (overrides --size).")
    var test: Int?

    @Option(name: .customLong("fashion-mnist"), help: "The Fashion-MNIST IDX directory.")
    var fashionMNIST: String = "/usr/share/datasets/fashion-mnist"

    @Option(help: "Worker threads: 1…\(Threads.maximum); 0 uses all active cores.")
    var threads: Int = 0

    @Option(help: "Largest item scale (items are 28 px × a uniform draw in --min-scale…this).")
    var maxScale: Double = 4

    @Option(help: "Smallest item scale (at most --max-scale).")
    var minScale: Double = 1

    @Option(help: "Smallest scene side in pixels (width and height are each drawn in --min-side…--max-side).")
    var minSide: Int = 96

    @Option(help: "Largest scene side in pixels.")
    var maxSide: Int = 256

    @Option(help: "Fewest objects the generator tries to place per scene.")
    var minObjects: Int = 1

    @Option(help: "Most objects the generator tries to place per scene (fewer remain when they do not fit).")
    var maxObjects: Int = 4

    @Option(help: "Backgrounds are their drawn pattern times this (1: as drawn; 0.2: dark, like Fashion-MNIST).")
    var backgroundBrightness: Double = 1

    @Option(help: "Probability that an object is tinted with a colour rather than left gray.")
    var tintProbability: Double = 0.75

    func validate() throws {
      _ = try sceneConfiguration()
      if PathKind(out) == .file {
        throw ValidationError("--out \(out) is a file; give a folder (it is created if missing).")
      }
      if let train, train < 0 { throw ValidationError("--train must be 0 or more, got \(train).") }
      if let test, test < 0 { throw ValidationError("--test must be 0 or more, got \(test).") }
      try validateThreads(threads)
    }

    var sceneSetSize: SceneSetSize {
      let preset = size == .small ? SceneSetSize.small : .voc2007
      return SceneSetSize(trainval: train ?? preset.trainval, test: test ?? preset.test)
    }

    /// The scene design the options ask for (the defaults: `SceneConfiguration()`), range-checked.
    func sceneConfiguration() throws -> SceneConfiguration {
      do {
        return try SceneConfiguration.checked(
          minScale: minScale, maxScale: maxScale, minSide: minSide, maxSide: maxSide, minObjects: minObjects,
          maxObjects: maxObjects, backgroundBrightness: backgroundBrightness, tintProbability: tintProbability)
      } catch let error as SceneConfigurationError {
        throw ValidationError("--\(error.option) \(error.problem)")
      }
    }

    func run() throws {
      try Threads.start(threads)
      let start = Date()
      let directory = URL(fileURLWithPath: fashionMNIST)
      let trainItems = try SceneItems(fashionMNIST: directory, split: .train)
      let testItems = try SceneItems(fashionMNIST: directory, split: .test)
      let size = sceneSetSize
      let showsProgress = size.trainval + size.test > 256
      let configuration = try sceneConfiguration()
      let summary = try SceneSet.write(
        to: URL(fileURLWithPath: out), seed: seed, size: size, trainItems: trainItems, testItems: testItems,
        configuration: configuration, progress: { done, total in
          guard showsProgress else { return }
          let elapsed = Date().timeIntervalSince(start)
          FileHandle.standardError.write(Data("\rscenes \(done)/\(total)  \(Int(elapsed)) s".utf8))
          if done == total { FileHandle.standardError.write(Data("\n".utf8)) }
        })
      let seconds = Date().timeIntervalSince(start)
      print("""
        Wrote \(summary.imageCount) scenes (\(size.trainval) trainval, \(size.test) test) in \
        \(String(format: "%.1f", seconds)) s, seed \(seed):
          \(summary.vocRoot.path)
        \(summary.cocoFiles.map { "  " + $0.path }.joined(separator: "\n"))
        Objects: \(summary.objectCount) (\(summary.difficultCount) difficult, \(summary.truncatedCount) truncated)
        """)
      for (name, count) in zip(summary.classNames, summary.objectsPerClass) {
        print("  \(name.padding(toLength: 10, withPad: " ", startingAt: 0)) \(count)")
      }
    }
  }

  struct Preview: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Write a PNG grid of augmented views: per row a source image, then its views.",
      discussion: """
        simsiam: two SimSiam views (RandomResizedCrop 0.2–1, ColorJitter p 0.8, RandomGrayscale 0.2, \
        GaussianBlur p 0.5, flip). linear: two linear-probe training views (RandomResizedCrop 0.08–1, flip, \
        ColorJitter; Lighting acts on tensors and is not shown). eval: Resize + CenterCrop, then Resize + squash. \
        Reads an image folder, a VOC year directory or IDX files (Fashion-MNIST, shown as RGB).
        """)

    @Option(help: "The dataset: image folder, VOC year directory, or IDX directory.")
    var data: String

    @Option(help: "simsiam, linear or eval.")
    var transform: PreviewTransform = .simsiam

    @Option(help: "The PNG file to write.")
    var out: String = "views.png"

    @Option(help: "Source images (rows).")
    var count: Int = 8

    @Option(help: "Seed of the image choice and of the views.")
    var seed: UInt64 = 0

    @Option(help: "Cell size in pixels, and the transforms' output size.")
    var size: Int = 224

    func validate() throws {
      guard count >= 1 else { throw ValidationError("--count must be at least 1, got \(count).") }
      guard size >= 8 else { throw ValidationError("--size must be at least 8, got \(size).") }
    }

    func run() throws {
      let sources = try PreviewGrid.loadSources(data: URL(fileURLWithPath: data), count: count, seed: seed)
      let grid = PreviewGrid(transform: transform, size: size, seed: seed).render(sources)
      try grid.write(to: URL(fileURLWithPath: out), format: .png)
      print("Wrote \(out): \(sources.count) rows × \(1 + PreviewGrid.viewsPerSource) columns (source, "
              + "\(PreviewGrid.viewsPerSource) \(transform.rawValue) views), \(grid.width)×\(grid.height) px.")
    }
  }
}

extension PreviewTransform: ExpressibleByArgument {}
