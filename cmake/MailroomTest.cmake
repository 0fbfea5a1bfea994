# mr_test(NAME SOURCES src... [LIBS lib...] [LABELS label...] [TIMEOUT s]
#         [FIXTURES fixture...])
# One Check binary per suite, each its own CTest, as nng's nng_test().
function(mr_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS;LABELS;FIXTURES;ENV" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} PkgConfig::CHECK)
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR} ${CMAKE_SOURCE_DIR}/tests)
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES
      TIMEOUT ${T_TIMEOUT}
      LABELS "${T_LABELS}"
      SKIP_RETURN_CODE 77
      ENVIRONMENT "CK_DEFAULT_TIMEOUT=${T_TIMEOUT};MR_SOURCE_DIR=${CMAKE_SOURCE_DIR};MR_BINARY_DIR=${CMAKE_BINARY_DIR};MR_KAFKA_DIR=${CMAKE_BINARY_DIR}/kafka-fixture;MAILROOM_HTTP_LISTEN=;${T_ENV}")
  if(T_FIXTURES)
    set_tests_properties(${name} PROPERTIES FIXTURES_REQUIRED "${T_FIXTURES}")
  endif()
endfunction()

# mr_script_test(NAME SCRIPT [LABELS ...] [TIMEOUT s] [FIXTURES ...])
function(mr_script_test name script)
  cmake_parse_arguments(T "" "TIMEOUT" "LABELS;FIXTURES;ARGS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  add_test(NAME ${name} COMMAND bash ${script} ${T_ARGS})
  set_tests_properties(${name} PROPERTIES
      TIMEOUT ${T_TIMEOUT}
      LABELS "${T_LABELS}"
      SKIP_RETURN_CODE 77
      ENVIRONMENT "MR_SOURCE_DIR=${CMAKE_SOURCE_DIR};MR_BINARY_DIR=${CMAKE_BINARY_DIR};MR_KAFKA_DIR=${CMAKE_BINARY_DIR}/kafka-fixture;MAILROOM_HTTP_LISTEN=")
  if(T_FIXTURES)
    set_tests_properties(${name} PROPERTIES FIXTURES_REQUIRED "${T_FIXTURES}")
  endif()
endfunction()
