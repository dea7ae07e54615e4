-module(demo).
-export([add/2]).

%% Adds numbers.
add(A, B) ->
    A + B.
