load("@rules//:defs.bzl", "thing")

def my_rule(name, srcs):
    native.genrule(name = name, srcs = srcs)
