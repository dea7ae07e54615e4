import 'package:flutter/material.dart';

const limit = 3;

/// A counter.
class Counter extends Base {
  int value = 0;

  void increment(int by) {
    value += by;
    print(value);
  }
}

int twice(int x) => x * 2;
