" Says hello.
function! Greet(name)
  echo "hello " . a:name
endfunction
