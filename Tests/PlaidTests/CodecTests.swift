import Foundation
import Plaid
import Tensor
import Testing

@Suite struct CodecTests {
    @Test func centroidCountFollowsTheReferenceFormula() {
        #expect(PlaidConfig.centroidCount(trainingTokens: 1024 * 60, trainingDocuments: 1024) == 2048)
        #expect(PlaidConfig.centroidCount(trainingTokens: 1024 * 100, trainingDocuments: 1024) == 4096)
        #expect(PlaidConfig.centroidCount(trainingTokens: 100 * 60, trainingDocuments: 100) == 1024)
        #expect(PlaidConfig.centroidCount(trainingTokens: 10, trainingDocuments: 1) == 10)
    }

    @Test func oneBitIndexIsAboutAQuarterOfFourBit() throws {
        let corpus = smallCorpus(documents: 200, dim: 128, queries: 1)
        let four = temporaryDirectory("four"), one = temporaryDirectory("one")
        defer { cleanUp(four); cleanUp(one) }
        let a = try PlaidIndex.create(at: four, documents: documents(corpus), config: testConfig(nbits: 4), backend: nil)
        let b = try PlaidIndex.create(at: one, documents: documents(corpus), config: testConfig(nbits: 1), backend: nil)
        let tokens = corpus.documents.reduce(0) { $0 + $1.rows }
        // Residual bytes per token: 64 at 4 bits, 16 at 1 bit (codes, ids and IVF come on top); the centroids
        // and their stored exact-stage tables depend on K alone.
        let ratio = Double(a.bytesOnDisk - a.centroidCount * 128 * 4 - a.exactCentroidBytes)
            / Double(b.bytesOnDisk - b.centroidCount * 128 * 4 - b.exactCentroidBytes)
        #expect(ratio > 2.8, "4-bit / 1-bit size ratio \(ratio) over \(tokens) tokens")
        #expect(b.search(query: corpus.queries[0], topK: 1).first?.id == a.search(query: corpus.queries[0], topK: 1).first?.id)
    }

    @Test func searchParametersReadTheEnvironment() {
        let parameters = SearchParameters.fromEnvironment([
            "COLGREP_N_IVF_PROBE": "16", "COLGREP_N_FULL_SCORES": "1000", "COLGREP_CENTROID_SCORE_THRESHOLD": "-1",
        ])
        #expect(parameters.nIVFProbe == 16 && parameters.nFullScores == 1000 && parameters.centroidScoreThreshold == -1)
        let defaults = SearchParameters.fromEnvironment(["COLGREP_N_IVF_PROBE": "x", "COLGREP_N_FULL_SCORES": "-3"])
        #expect(defaults == SearchParameters())
        #expect(defaults.nIVFProbe == 8 && defaults.nFullScores == 4096 && defaults.centroidScoreThreshold == 0.4)
        #expect(!defaults.pruneCodeScores)
        #expect(SearchParameters.fromEnvironment(["COLGREP_PRUNE_CODE_SCORES": "1"]).pruneCodeScores)
        #expect(SearchParameters.fromEnvironment(["COLGREP_PRUNE_CODE_SCORES": "TRUE"]).pruneCodeScores)
        #expect(!SearchParameters.fromEnvironment(["COLGREP_PRUNE_CODE_SCORES": "0"]).pruneCodeScores)
        #expect(!SearchParameters.fromEnvironment(["COLGREP_PRUNE_CODE_SCORES": "yes please"]).pruneCodeScores)
    }
}
