// The protocol layer: one request, runner and result type per protocol (pretrain, voc-svm, linear, knn, …), the
// run lifecycle (`ResultsStore.recording`), the one backbone builder and the one progress reporter. The CLI turns
// options into requests; `quickstart` composes the same calls.
