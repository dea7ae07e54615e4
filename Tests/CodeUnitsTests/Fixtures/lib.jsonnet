local util = import "util.libsonnet";
{
  name: "demo",
}
