// mmdet 2.x's detection pipeline against OpenCV: Tests/DatasetsTests/Fixtures/detection/detection_pipeline.json is
// written by scripts/reference/make_detection_pipeline_fixtures.py (cv2 called as mmcv 1.x calls it; mmdet's
// XMLDataset box reading, Resize, RandomFlip, Normalize and Pad, and detectron2's box reading, re-implemented there
// with the random draws fixed). Every comparison is exact: sizes equal, floats bit-equal, resized bytes by SHA-256.
import Foundation
import Testing
import Datasets
import Support
import Tensors

struct DetectionPipelineCase: Decodable {
  var op: String
  var input: String?
  var width: Int?
  var height: Int?
  var scale: [Int]?
  var expected: [Int]?
  var scale_factor: [Float]?
  var texts: [String]?
  var mmdet: [Float]?
  var detectron2: [Float]?
  var max_size: Int?
  var short_side: Int?
  var flip: Bool?
  var divisor: Int?
  var input_boxes: [Float]?
  var size: [Int]?
  var boxes: [Float]?
  var padded_shape: [Int]?
  var padded: [Float]?
  var resized_sha256: String?
}

struct DetectionPipelineFixtures: Decodable {
  var images: [String: EncodedImage]
  var cases: [DetectionPipelineCase]

  static let shared: DetectionPipelineFixtures = {
    let url = Bundle.module.url(forResource: "detection_pipeline", withExtension: "json",
                                subdirectory: "Fixtures/detection")!
    return try! JSONDecoder().decode(DetectionPipelineFixtures.self, from: Data(contentsOf: url))
  }()

  func image(_ name: String?) -> Image { images[name!]!.image }
  func cases(_ op: String) -> [DetectionPipelineCase] { cases.filter { $0.op == op } }
}

/// Objects of class 0 from flat boxes.
private func objects(_ boxes: [Float]) -> [DetectionObject] {
  stride(from: 0, to: boxes.count, by: 4).map {
    DetectionObject(x1: boxes[$0], y1: boxes[$0 + 1], x2: boxes[$0 + 2], y2: boxes[$0 + 3], classIndex: $0 / 4,
                    isDifficult: false)
  }
}

@Suite struct DetectionPipelineTests {
  let fixtures = DetectionPipelineFixtures.shared

  @Test func sizesAndScaleFactorsMatchMMCVAtTheProtocolScales() {
    let cases = fixtures.cases("rescale")
    #expect(cases.count == 88)
    for c in cases {
      let pipeline = DetectionPipeline(shortSides: [c.scale![1]], maxSize: c.scale![0], flipProbability: 0)
      let size = pipeline.resizedSize(width: c.width!, height: c.height!, shortSide: c.scale![1])
      #expect([size.width, size.height] == c.expected!, "\(c.width!)×\(c.height!) at \(c.scale!)")
      // mmdet's scale_factor: new / old as a float32 array.
      let factors = [Float(Double(size.width) / Double(c.width!)), Float(Double(size.height) / Double(c.height!))]
      #expect(factors == c.scale_factor!, "\(c.width!)×\(c.height!) at \(c.scale!)")
    }
  }

  @Test func xmlCoordinatesBecomeBoxesAsMMDetAndDetectron2ReadThem() {
    let cases = fixtures.cases("xml_box")
    #expect(cases.count == 5)
    for c in cases {
      let v = c.texts!.map { Double($0)! }
      let box = VOCAnnotation.Box(xmin: v[0], ymin: v[1], xmax: v[2], ymax: v[3])
      let mmdet = VOCBoxConvention.mmdet.box(box), detectron2 = VOCBoxConvention.detectron2.box(box)
      #expect([mmdet.x1, mmdet.y1, mmdet.x2, mmdet.y2] == c.mmdet!, "\(c.texts!)")
      #expect([detectron2.x1, detectron2.y1, detectron2.x2, detectron2.y2] == c.detectron2!, "\(c.texts!)")
    }
  }

  @Test func pipelineMatchesMMDetForFixedDecisions() throws {
    let cases = fixtures.cases("pipeline")
    #expect(cases.count == 5)
    for c in cases {
      let pipeline = DetectionPipeline(shortSides: [c.short_side!], maxSize: c.max_size!, flipProbability: 0.5,
                                       padDivisor: c.divisor!)
      let targets = objects(c.input_boxes!)
      let sample = pipeline.apply(image: fixtures.image(c.input), objects: targets, imageID: c.input!,
                                  decisions: .init(scaleIndex: 0, flip: c.flip!))
      let label = "\(c.input!) short \(c.short_side!) flip \(c.flip!)"
      #expect([sample.height, sample.width] == c.size!, "\(label)")
      #expect([Float(sample.scaleFactor.x), Float(sample.scaleFactor.y)] == c.scale_factor!, "\(label)")
      #expect(sample.boxes.shape == [targets.count, 4])
      #expect(sample.boxes.scalars == c.boxes!, "\(label)")
      #expect(sample.labels == targets.map(\.classIndex))
      #expect(sample.isFlipped == c.flip!)
      let original = fixtures.image(c.input)
      #expect(sample.originalSize == (original.height, original.width))

      // Pad(size_divisor) of one image is the collated batch of that image.
      let batch = collateDetectionBatch([sample], padDivisor: c.divisor!)
      #expect(batch.images.shape == [1] + c.padded_shape!, "\(label)")
      #expect(batch.images.scalars == c.padded!, "\(label)")
      // The unpadded image is the top-left corner of the padded one.
      let (h, w, paddedWidth) = (sample.height, sample.width, c.padded_shape![1])
      let padded: [Float] = c.padded!
      var corner: [Float] = []
      for y in 0..<h {
        let start: Int = y * paddedWidth * 3
        corner += padded[start..<(start + w * 3)]
      }
      #expect(sample.image.shape == [h, w, 3])
      #expect(sample.image.scalars == corner, "\(label)")
    }
  }

  @Test func fullScaleResizeAndBoxesMatchMMDet() {
    let cases = fixtures.cases("full_scale")
    #expect(cases.count == 3)
    for c in cases {
      let pipeline = DetectionPipeline(shortSides: [c.short_side!], maxSize: c.max_size!, flipProbability: 0.5)
      let image = fixtures.image(c.input)
      let size = pipeline.resizedSize(width: image.width, height: image.height, shortSide: c.short_side!)
      #expect([size.height, size.width] == c.size!)
      var resized = image.resizedLikeOpenCVLinear(width: size.width, height: size.height)
      if c.flip! { resized = resized.flippedHorizontally() }
      #expect(SHA256.hexDigest(of: resized.pixels) == c.resized_sha256!, "\(c.input!) at \(c.short_side!)")
      let sample = pipeline.apply(image: image, objects: objects(c.input_boxes!), imageID: c.input!,
                                  decisions: .init(scaleIndex: 0, flip: c.flip!))
      #expect([Float(sample.scaleFactor.x), Float(sample.scaleFactor.y)] == c.scale_factor!)
      #expect(sample.boxes.scalars == c.boxes!, "\(c.input!) at \(c.short_side!)")
    }
  }

  @Test func presetsAreTheConfigsScales() {
    #expect(DetectionPipeline.mmdetVOCTrain.shortSides == [480, 512, 544, 576, 608, 640, 672, 704, 736, 768, 800])
    #expect(DetectionPipeline.mmdetVOCTrain.maxSize == 1333 && DetectionPipeline.mmdetVOCTrain.flipProbability == 0.5)
    #expect(DetectionPipeline.mmdetVOCTrain.padDivisor == 32)
    #expect(DetectionPipeline.mmdetVOCTrain.mean == [123.675, 116.28, 103.53])
    #expect(DetectionPipeline.mmdetVOCTrain.std == [58.395, 57.12, 57.375])
    #expect(DetectionPipeline.mmdetVOCTest.shortSides == [800] && DetectionPipeline.mmdetVOCTest.flipProbability == 0)
  }

  @Test func decisionsAreKeyedBySeedAndPositionAndUniform() {
    let pipeline = DetectionPipeline.mmdetVOCTrain
    #expect(pipeline.decisions(seed: 7, position: 123) == pipeline.decisions(seed: 7, position: 123))
    let draws = (0..<4400).map { pipeline.decisions(seed: 7, position: $0) }
    var perScale = [Int](repeating: 0, count: 11)
    for d in draws { perScale[d.scaleIndex] += 1 }
    // 400 expected per scale; 5 standard deviations is ±98.
    #expect(perScale.allSatisfy { abs($0 - 400) < 100 }, "\(perScale)")
    let flips = draws.count { $0.flip }
    #expect(abs(flips - 2200) < 170, "\(flips) flips of 4400")
    let otherSeed = (0..<4400).map { pipeline.decisions(seed: 8, position: $0) }
    #expect(otherSeed != draws)
    #expect((0..<500).allSatisfy { !DetectionPipeline.mmdetVOCTest.decisions(seed: 7, position: $0).flip })
  }

  @Test func codableRoundTripAndProblems() throws {
    // A pipeline away from every default (the scene miniature's scales, pad 16) survives the round trip.
    let scenes = DetectionPipeline(shortSides: [48, 56, 64, 72, 80], maxSize: 128, flipProbability: 0.5, padDivisor: 16)
    let data = try JSONEncoder().encode(scenes)
    #expect(try JSONDecoder().decode(DetectionPipeline.self, from: data) == scenes)
    var broken = DetectionPipeline.mmdetVOCTrain
    broken.shortSides = []
    broken.padDivisor = 0
    broken.std = [1, 0, 1]
    #expect(broken.problems.count == 3)
    #expect(throws: DatasetError.self) { try broken.validate(path: "faster_rcnn.yaml") }
    #expect(DetectionPipeline.mmdetVOCTrain.problems.isEmpty)
  }

  @Test func collatedBatchPadsEveryImageToTheLargestMultiple() {
    func sample(_ h: Int, _ w: Int, value: Float) -> DetectionSample {
      DetectionSample(image: Tensor(repeating: value, shape: [h, w, 3]), height: h, width: w, scaleFactor: (1, 1),
                      originalSize: (h, w), boxes: Tensor(shape: [1, 4], scalars: [0, 0, 1, 1]), labels: [value > 1 ? 1 : 0],
                      imageID: "\(h)x\(w)", isFlipped: false)
    }
    // 20×30 → 32×32, 33×17 → 48×32: the batch is 48×32.
    let batch = collateDetectionBatch([sample(20, 30, value: 1), sample(33, 17, value: 2)], padDivisor: 16)
    #expect(batch.images.shape == [2, 48, 32, 3])
    #expect(batch.sizes.map { [$0.height, $0.width] } == [[20, 30], [33, 17]])
    #expect(batch.labels == [[0], [1]] && batch.imageIDs == ["20x30", "33x17"])
    let s = batch.images.scalars
    func at(_ n: Int, _ y: Int, _ x: Int) -> Float { s[((n * 48 + y) * 32 + x) * 3 + 1] }
    #expect(at(0, 19, 29) == 1 && at(0, 20, 0) == 0 && at(0, 0, 30) == 0 && at(0, 47, 31) == 0)
    #expect(at(1, 32, 16) == 2 && at(1, 33, 0) == 0 && at(1, 0, 17) == 0)
    // Each image's own pixels, and nothing else, are non-zero.
    #expect(s.count { $0 == 1 } == 20 * 30 * 3 && s.count { $0 == 2 } == 33 * 17 * 3)
  }

  @Test func detectionsMapBackByTheFloat32ScaleFactor() {
    let sample = DetectionSample(image: Tensor.zeros([8, 8, 3]), height: 8, width: 8, scaleFactor: (0.8, 1.25),
                                 originalSize: (10, 10), boxes: Tensor.zeros([0, 4]), labels: [], imageID: "x",
                                 isFlipped: false)
    let mapped = sample.boxesInOriginalFrame([8, 5, 4, 10])
    #expect(mapped == [8 / Float(0.8), 5 / Float(1.25), 4 / Float(0.8), 10 / Float(1.25)])
    #expect(mapped[1] == 4 && mapped[3] == 8)
  }
}
