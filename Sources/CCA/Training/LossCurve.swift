/// The loss history as CSV and as an SVG line chart (train and validation loss against the step).
public enum LossCurve {
    public static func csv(_ history: [LossRecord]) -> String {
        "step,train_loss,validation_loss,learning_rate\n" + history.map { record in
            "\(record.step),\(record.trainLoss),\(record.validationLoss.map { "\($0)" } ?? ""),\(record.learningRate)"
        }.joined(separator: "\n") + "\n"
    }

    public static func svg(_ history: [LossRecord], title: String) -> String {
        LinePlot(title: title, x: .init(label: "step"), y: .init(label: "loss (nats)"), series: [
            .init(name: "train", color: LinePlot.colors[0], points: history.map { (Double($0.step), $0.trainLoss) }),
            .init(name: "validation", color: LinePlot.colors[1],
                  points: history.compactMap { record in record.validationLoss.map { (Double(record.step), $0) } }),
        ]).svg
    }
}
