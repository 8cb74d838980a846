// What `npm start` tells a newcomer to type must work from their second
// terminal as printed.
import { describe, expect, it } from "vitest";
import { kubeconfigExport } from "../../lab/demo/instructions.ts";

describe("npm start's instructions", () => {
  it("export KUBECONFIG names a path that still works after cd: $PWD/… below the working directory, else absolute", () => {
    expect(kubeconfigExport("/home/you/edgelb/.edgelb/kubeconfig", "/home/you/edgelb")).toBe("export KUBECONFIG=$PWD/.edgelb/kubeconfig");
    expect(kubeconfigExport("/tmp/lab/state/kubeconfig", "/home/you/edgelb")).toBe("export KUBECONFIG=/tmp/lab/state/kubeconfig");
    expect(kubeconfigExport("/home/you/kubeconfig", "/home/you/edgelb")).toBe("export KUBECONFIG=/home/you/kubeconfig");
  });
});
