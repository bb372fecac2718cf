# Writes the man page and the bash completion that nasc prints from its help table:
#   cmake -DNASC=path/to/nasc -DOUT_DIR=dir -P nasc_help_files.cmake
# (a script rather than a shell redirect in add_custom_command, whose quoting differs from
# one generator to another).
foreach(what IN ITEMS "--man;nasc.1" "--completion;bash;nasc.bash")
  list(POP_BACK what file)
  execute_process(COMMAND "${NASC}" ${what} OUTPUT_FILE "${OUT_DIR}/${file}.tmp"
                  RESULT_VARIABLE status)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "`nasc ${what}` failed (${status}); ${file} not written")
  endif()
  file(RENAME "${OUT_DIR}/${file}.tmp" "${OUT_DIR}/${file}")
endforeach()
