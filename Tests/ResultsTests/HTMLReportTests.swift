import Foundation
import Testing
@testable import Results

@Suite struct SVGChartTests {
  @Test func niceTicksAndDecimals() {
    #expect(SVGChart.niceTicks(20, 40, exact: false) == [20, 25, 30, 35, 40])
    #expect(SVGChart.niceTicks(21, 39, exact: false) == [20, 25, 30, 35, 40])
    #expect(SVGChart.niceTicks(-0.93, -0.31, exact: false).first == -1)
    #expect(SVGChart.niceTicks(0, 2, exact: false, minimumStep: 1) == [0, 1, 2])
    #expect(SVGChart.niceTicks(0, 11, exact: false, minimumStep: 1) == [0, 2, 4, 6, 8, 10, 12])  // whole epochs
    #expect(SVGChart.niceTicks(0, 100, exact: true) == [0, 20, 40, 60, 80, 100])
    #expect(SVGChart.niceTicks(5, 5, exact: false) == [4.4, 4.6, 4.8, 5, 5.2, 5.4, 5.6])
    #expect(SVGChart.decimals(forStep: 0.01) == 2 && SVGChart.decimals(forStep: 2.5) == 1
              && SVGChart.decimals(forStep: 5) == 0)
    #expect(SVGChart.coordinate(246) == "246" && SVGChart.coordinate(132.5) == "132.5"
              && SVGChart.coordinate(87.254) == "87.25")
  }

  /// Plot area: x 64 … 444, y 32 … 232 (SVGChart.plotLeft/plotTop/plotWidth/plotHeight).
  @Test func logScalePolylineCoordinates() {
    let chart = SVGChart(title: "t", xLabel: "k", yLabel: "mAP", xScale: .log2, series: [
      ChartSeries(name: "A", points: [ChartPoint(x: 4, y: 40), ChartPoint(x: 1, y: 20), ChartPoint(x: 2, y: 30)]),
    ])
    #expect(chart.yTicks == [20, 25, 30, 35, 40])
    #expect(chart.xTicks.map(\.label) == ["1", "2", "4"])
    // log₂: k = 1, 2, 4 → 0, ½, 1 of the width; y 20 … 40 → bottom … top.
    #expect(chart.render().contains("points=\"64,232 254,132 444,32\""))
  }

  @Test func categoricalPointsSitMidCategoryWithErrorBarsAndGuides() {
    let chart = SVGChart(title: "t", xLabel: "layer", yLabel: "top-1",
                         xScale: .categorical(["feature1", "feature2", "feature3", "feature4", "feature5"]),
                         series: [ChartSeries(name: "A", points: [ChartPoint(x: 0, y: 10, error: 5),
                                                                  ChartPoint(x: 4, y: 50)]),
                                  ChartSeries(name: "ref", points: [ChartPoint(x: 4, y: 100)], isReference: true)],
                         guides: [ChartGuide(y: 25, label: "quarter")], yDomain: 0...100)
    let svg = chart.render()
    // 380 px / 5 categories = 76 px each; midpoints 102 … 406. y = 32 + (100 − v) · 2.
    #expect(svg.contains("points=\"102,212 406,132\""))
    #expect(svg.contains("<line class=\"error\" x1=\"102\" y1=\"222\" x2=\"102\" y2=\"202\""))
    #expect(svg.contains("stroke-dasharray=\"6 4\" points=\"406,32\""))
    #expect(svg.contains("<line class=\"guide\" x1=\"64\" y1=\"182\" x2=\"444\" y2=\"182\"/>"))
    #expect(svg.contains(">quarter</text>"))
    #expect(chart.height == 32 + 200 + 48 + 3 * 18)
    // The reference series is drawn before the measured one, so the measured line is on top.
    let reference = svg.range(of: "class=\"series reference\"")!.lowerBound
    #expect(reference < svg.range(of: "class=\"series\">")!.lowerBound)
  }
}

@Suite struct HTMLReportTests {
  static let label = #"<b>Tom & "Jerry"</b>"#

  /// One evaluated checkpoint (SVM per layer, low-shot k = 1, 2, 4) and one pretraining run with d = 256.
  static func report(references: [Reference] = []) -> HTMLReport {
    let evaluation = makeRun(1, label: label)
    let pretraining = makeRun(2, label: "quick", kind: .pretrain, config: #"{"model": {"features": 256}}"#, sha: nil)
    var scores = zip(Benchmark.features, [10.0, 20, 30, 45, 40]).map {
      Score(benchmark: Benchmark.voc07SVM, metric: "mAP", layer: $0, value: $1)
    }
    scores += zip([1, 2, 4], [20.0, 30, 40]).map {
      Score(benchmark: Benchmark.voc07LowShotSVM, metric: "mAP", layer: "feature4", k: $0, value: $1, count: 5)
    }
    scores.append(Score(benchmark: Benchmark.voc07LowShotSVM, metric: "mAP", layer: "feature5", k: 1, value: 99))
    scores.append(Score(benchmark: "fashion-mnist-linear", metric: "top1", layer: "avgpool", value: 80))
    scores.append(Score(benchmark: "fashion-mnist-knn", metric: "top1", layer: "avgpool", k: 20, value: 75.5))
    let epochs = [
      EpochMetric(epoch: 0, loss: -0.5, learningRate: 0.06, outputStd: 0.05),
      EpochMetric(epoch: 1, loss: -0.7, learningRate: 0.03, outputStd: 0.06),
      EpochMetric(epoch: 2, loss: -0.8, learningRate: 0.0, outputStd: 0.0625),
    ]
    return HTMLReport(runs: [pretraining, evaluation], scores: [RunID(1): scores], epochs: [RunID(2): epochs],
                      references: references, source: "results/<test>.sqlite")
  }

  @Test func lowShotChartUsesTheBestSVMLayerOnALogAxis() throws {
    let chart = try #require(Self.report().lowShotChart)
    #expect(chart.xScale == .log2)
    // feature4 has the best SVM mAP (45), so its low-shot curve is drawn, not feature5's 99.
    #expect(chart.series.map(\.points) == [[ChartPoint(x: 1, y: 20), ChartPoint(x: 2, y: 30), ChartPoint(x: 4, y: 40)]])
    #expect(chart.render().contains("points=\"64,232 254,132 444,32\""))
    let withReference = try #require(Self.report(references: [
      try ReferenceCatalog.builtIn.reference(named: "mmselfsup-100e")]).lowShotChart)
    #expect(withReference.series.count == 2)
    #expect(withReference.series[1].isReference)
    #expect(withReference.series[1].name == "resnet50_8xb32-coslr-100e (mmselfsup-100e)")
    #expect(withReference.series[1].points.map(\.x) == [1, 2, 4, 8, 16, 32, 64, 96])
  }

  @Test func layerAndPretrainingCharts() throws {
    let report = Self.report(references: [try ReferenceCatalog.builtIn.reference(named: "mmselfsup-100e")])
    let layers = report.layerCharts
    #expect(layers.map(\.title) == ["VOC07 SVM mAP per layer", "Linear probe top-1 per layer (fashion-mnist-linear)"])
    #expect(layers[0].xScale == .categorical(Benchmark.features))
    #expect(layers[0].series[0].points.map(\.y) == [10, 20, 30, 45, 40])
    #expect(layers[0].series[1].points == [ChartPoint(x: 4, y: 84.21)])  // the reference's best layer only
    let pretraining = report.pretrainingCharts
    #expect(pretraining.map(\.title) == ["Pretraining loss", "Learning rate",
                                         "Collapse check: std of the normalised output"])
    #expect(pretraining[0].series[0].points.map(\.y) == [-0.5, -0.7, -0.8])
    #expect(pretraining[0].series[0].name == "run 2: quick")
    #expect(pretraining[2].guides == [ChartGuide(y: 0.0625, label: "1/√d, d = 256: 0.0625")])
    #expect(HTMLReport.outputDimension(config: #"{"model": {"features": 2048}}"#) == 2048)
    #expect(HTMLReport.outputDimension(config: "{}") == nil)
  }

  @Test func pageIsSelfContainedEscapedAndDeterministic() throws {
    let report = Self.report(references: [try ReferenceCatalog.builtIn.reference(named: "mmselfsup-100e")])
    let page = report.render()
    #expect(page == report.render())
    #expect(page.hasPrefix("<!DOCTYPE html>\n<html lang=\"en\">"))
    #expect(page.hasSuffix("</body>\n</html>\n"))
    for forbidden in ["<script", "http:", "https:", "url(", "<img", "<link", "@import"] {
      #expect(!page.contains(forbidden), "\(forbidden)")
    }
    #expect(!page.contains(Self.label))
    #expect(page.contains("&lt;b&gt;Tom &amp; &quot;Jerry&quot;&lt;/b&gt;"))
    #expect(page.contains("from <code>results/&lt;test&gt;.sqlite</code>"))
    #expect(page.components(separatedBy: "<svg ").count - 1 == 6)  // low-shot, 2 per-layer, 3 pretraining
    #expect(page.contains("<h3>VOC SVM / Low-shot SVM</h3>"))
    #expect(page.contains("<td>&lt;b&gt;Tom &amp; &quot;Jerry&quot;&lt;/b&gt;</td><td>feature4</td>"
                          + "<td class=\"number\">45.00</td><td class=\"number\">20.00</td>"))
    #expect(page.contains("<h2>Other scores</h2>"))
    #expect(page.contains("<td>fashion-mnist-knn</td><td>top1</td><td>avgpool</td><td class=\"number\">20</td>"
                          + "<td class=\"number\">75.50</td>"))
    #expect(page.contains("<h2>Runs</h2>"))
    // Tags balance (a cheap well-formedness check of the generated markup).
    for tag in ["svg", "table", "figure", "g", "text", "title", "tr"] {
      #expect(page.components(separatedBy: "<\(tag)>").count + page.components(separatedBy: "<\(tag) ").count - 2
                == page.components(separatedBy: "</\(tag)>").count - 1, "\(tag)")
    }
  }

  @Test func anEmptyDatabaseSaysThereIsNothingToPlot() {
    let page = HTMLReport(runs: [], scores: [:], epochs: [:], references: []).render()
    #expect(page.contains("No finished run has scores or pretraining epochs to plot yet."))
    #expect(!page.contains("<svg"))
  }
}
