export * from "./api.js";
export { TopicTree } from "./topic-tree.js";
export { RetainedIndex } from "./retained.js";
export { matches as topicMatches } from "./topic-match.js";
export { Broker, assertNever } from "./broker.js";
