function(add_tool name)
  message(STATUS "tool ${name}")
endfunction()

add_tool(demo)
