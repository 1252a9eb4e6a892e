import Foundation
import Testing
import Datasets
import Tensors
@testable import Evaluation

/// Labelled sources (folders, lists, iNat JSON, embedded data) and the probe / kNN configs.
@Suite struct ClassificationSourceTests {
  static func withFolder<T>(_ body: (URL) throws -> T) throws -> T {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("simsiam-cls-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    return try body(folder)
  }

  static func writeImage(_ url: URL, value: UInt8) throws {
    try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
    try Image(width: 4, height: 3, channels: 3, pixels: [UInt8](repeating: value, count: 36)).write(to: url)
  }

  @Test func imageFolderSplitsHaveClassesLabelsAndFingerprints() throws {
    try Self.withFolder { root in
      for (split, names) in [("train", ["cat/a.png", "cat/b.png", "dog/c.png"]), ("val", ["cat/d.png", "dog/e.png"])] {
        for (index, name) in names.enumerated() {
          try Self.writeImage(root.appendingPathComponent("\(split)/\(name)"), value: UInt8(10 * index))
        }
      }
      let location = ClassificationDataLocation(kind: .imageFolder, path: root.path)
      let train = try ClassificationSource.open(location, split: .train)
      let test = try ClassificationSource.open(location, split: .test)
      #expect(train.classNames == ["cat", "dog"])
      #expect(train.labels == [0, 0, 1])
      #expect(test.labels == [0, 1])
      #expect(train.location(of: 2).hasSuffix("train/dog/c.png"))
      #expect(try train.image(at: 1, channels: 1).channels == 1)
      #expect(train.fingerprint != test.fingerprint)
      let limited = try ClassificationSource.open(
        ClassificationDataLocation(kind: .imageFolder, path: root.path, limit: 2), split: .train)
      #expect(limited.count == 2 && limited.fingerprint != train.fingerprint)
    }
  }

  @Test func imageListsPlacesCSVAndINaturalistJSON() throws {
    try Self.withFolder { root in
      try Self.writeImage(root.appendingPathComponent("images/x/1.png"), value: 1)
      try Self.writeImage(root.appendingPathComponent("images/y/2.png"), value: 2)
      try "x/1.png 3\ny/2.png 0\n".write(to: root.appendingPathComponent("train.txt"), atomically: true, encoding: .utf8)
      try "path,label\nx/1.png,1\ny/2.png,2\n".write(to: root.appendingPathComponent("val.csv"), atomically: true,
                                                    encoding: .utf8)
      let list = ClassificationDataLocation(kind: .places205, path: root.path, trainList: "train.txt",
                                            valList: "val.csv", trainRoot: "images", valRoot: "images")
      let train = try ClassificationSource.open(list, split: .train)
      #expect(train.labels == [3, 0])
      #expect(train.classCount == 4)
      #expect(try ClassificationSource.open(list, split: .test).labels == [1, 2])
      let json = """
        {"images": [{"id": 7, "file_name": "images/y/2.png"}, {"id": 3, "file_name": "images/x/1.png"}],
         "annotations": [{"image_id": 3, "category_id": 1}, {"image_id": 7, "category_id": 4}],
         "categories": [{"id": 1, "name": "Aves"}, {"id": 4, "name": "Plantae"}]}
        """
      try json.write(to: root.appendingPathComponent("train2018.json"), atomically: true, encoding: .utf8)
      let inat = try ClassificationSource.open(
        ClassificationDataLocation(kind: .inaturalist2018, path: root.path, trainList: "train2018.json"), split: .train)
      #expect(inat.labels == [4, 1])
      #expect(inat.classNames[1] == "Aves" && inat.classNames[4] == "Plantae")
      #expect(try inat.image(at: 0, channels: 3).pixels.first == 2)
      #expect(throws: DatasetError.self) {
        try ClassificationSource.open(ClassificationDataLocation(kind: .imageList, path: root.path), split: .train)
      }
    }
  }

  @Test(.enabled(if: FileManager.default.fileExists(atPath: "/usr/share/datasets/fashion-mnist")))
  func embeddedFashionMNIST() throws {
    let location = ClassificationDataLocation(kind: .fashionMNIST, path: "/usr/share/datasets/fashion-mnist",
                                              limit: 100, testLimit: 50)
    let train = try ClassificationSource.open(location, split: .train, channels: 1)
    let test = try ClassificationSource.open(location, split: .test, channels: 1)
    #expect(train.count == 100 && test.count == 50)
    #expect(train.classNames.first == "T-shirt/top" && train.classCount == 10)
    #expect(train.nativeSize == 28)
    #expect(try train.image(at: 0, channels: 1).width == 28)
  }

  // MARK: - Configs

  static var configFolder: URL {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
      .appendingPathComponent("configs/benchmarks/classification")
  }

  @Test func embeddedPresetsMatchTheConfigFiles() throws {
    for preset in [ClassificationPresets.mheadQuick, ClassificationPresets.avgpoolQuick, ClassificationPresets.knnQuick] {
      let file = Self.configFolder.appendingPathComponent("fashion-mnist/\(preset.name).yaml")
      #expect(try String(contentsOf: file, encoding: .utf8) == preset.yaml + "\n", "\(preset.name)")
    }
  }

  @Test func everyShippedConfigParsesAndTheDefaultsAreTheImageNetProtocol() throws {
    let files = try FileManager.default.subpathsOfDirectory(atPath: Self.configFolder.path)
      .filter { $0.hasSuffix(".yaml") }.sorted()
    #expect(files.count == 8)
    for file in files {
      let text = try String(contentsOf: Self.configFolder.appendingPathComponent(file), encoding: .utf8)
      if file.contains("knn") {
        _ = try KNNConfig.load(yaml: text, source: file)
      } else {
        _ = try LinearProbeConfig.load(yaml: text, source: file)
      }
    }
    let mhead = try LinearProbeConfig.load(
      yaml: String(contentsOf: Self.configFolder.appendingPathComponent(
        "imagenet/resnet50_mhead_8xb32-steplr-90e_in1k.yaml"), encoding: .utf8), source: "mhead")
    #expect(mhead == LinearProbeConfig())
    let avgpool = try LinearProbeConfig.load(
      yaml: String(contentsOf: Self.configFolder.appendingPathComponent("imagenet/resnet50_8xb512-coslr-90e_in1k.yaml"),
                   encoding: .utf8), source: "avgpool")
    #expect(avgpool.scaledLearningRate == 1.6)
    #expect(avgpool.optimization.method == .lars && avgpool.layers == [.avgpool])
    let quick = try LinearProbeConfig.load(yaml: ClassificationPresets.avgpoolQuick.yaml, source: "quick")
    #expect(abs(quick.scaledLearningRate - 1.6) < 1e-7)  // kept at 1.6 for batch 256 (see the config)
  }

  @Test func unknownKeysNameTheClosestKeyAndOverridesApply() throws {
    #expect {
      try LinearProbeConfig.load(yaml: "optimizer:\n  weight_dacay: 0.1\n", source: "x.yaml")
    } throws: { error in
      "\(error)".contains("optimizer.weight_dacay") && "\(error)".contains("optimizer.weight_decay")
    }
    #expect {
      try KNNConfig.load(yaml: nil, source: "default", overrides: ["knn.temprature=0.1"])
    } throws: { "\($0)".contains("knn.temperature") }
    let config = try LinearProbeConfig.load(yaml: nil, source: "default",
                                            overrides: ["schedule.batch_size=512", "head.layers=[feature5]"])
    #expect(config.layers == [.feature5])
    #expect(abs(config.scaledLearningRate - 0.02) < 1e-9)
    #expect(throws: (any Error).self) {
      try LinearProbeConfig.load(yaml: nil, source: "default", overrides: ["head.layers=[feature9]"])
    }
  }
}
