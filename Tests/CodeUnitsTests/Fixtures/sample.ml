open Printf

(** Adds one. *)
let incr x = x + 1

type shape = Circle of float | Square of float

module Geo = struct
  let area s = match s with Circle r -> r *. r | Square w -> w *. w
end
