// What a detector returns for one image.
import Tensors

/// One image's detections, sorted by decreasing score: boxes `[k, 4]` (x1, y1, x2, y2) in the pixels of the image
/// the network saw (the caller divides by its resize factor to get back to the original image), scores in (0, 1]
/// and foreground labels 0..<classCount.
public struct Detections: Sendable, Equatable {
  public var boxes: Tensor
  public var scores: [Float]
  public var labels: [Int]

  public init(boxes: Tensor, scores: [Float], labels: [Int]) {
    precondition(boxes.rank == 2 && boxes.shape[1] == 4 && boxes.shape[0] == scores.count
                   && scores.count == labels.count,
                 "Detections needs [k, 4] boxes with k scores and k labels, got \(boxes.shape), \(scores.count), "
                   + "\(labels.count).")
    self.boxes = boxes
    self.scores = scores
    self.labels = labels
  }

  public static let empty = Detections(boxes: Tensor.zeros([0, 4]), scores: [], labels: [])

  public var count: Int { scores.count }
}
