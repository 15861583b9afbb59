# Writes build/common/ib_version.h (cmake -P, run at every build by common/CMakeLists.txt's ibsol_version target).
# In: SRC (the .h.in), DST, SOURCE_DIR (the repository top), VERSION, BUILD_TYPE, GIT_COMMIT (an override for
# sources that are not a git checkout; empty: ask git). configure_file rewrites DST only when its text changes,
# so running this every build costs one git call and recompiles only after a commit.
set(IB_VERSION "${VERSION}")
set(IB_BUILD_TYPE "${BUILD_TYPE}")
set(IB_GIT_COMMIT "${GIT_COMMIT}")
if(IB_GIT_COMMIT STREQUAL "")
  find_program(GIT_EXE git)
  if(GIT_EXE)
    # Only the repository whose top is SOURCE_DIR: a source tree unpacked inside some other checkout must not
    # report that checkout's commit.
    execute_process(COMMAND "${GIT_EXE}" -C "${SOURCE_DIR}" rev-parse --show-toplevel
                    OUTPUT_VARIABLE top RESULT_VARIABLE rc ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE)
    get_filename_component(want "${SOURCE_DIR}" REALPATH)
    if(rc EQUAL 0)
      get_filename_component(top "${top}" REALPATH)
    endif()
    if(rc EQUAL 0 AND top STREQUAL want)
      execute_process(COMMAND "${GIT_EXE}" -C "${SOURCE_DIR}" rev-parse --short=12 HEAD
                      OUTPUT_VARIABLE sha RESULT_VARIABLE rc ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE)
      if(rc EQUAL 0 AND sha MATCHES "^[0-9a-f]+$")
        # --no-optional-locks: status must not take .git/index.lock, which would make a commit made at the same
        # moment fail.
        execute_process(COMMAND "${GIT_EXE}" --no-optional-locks -C "${SOURCE_DIR}" status --porcelain
                                --untracked-files=no
                        OUTPUT_VARIABLE changes RESULT_VARIABLE rc ERROR_QUIET)
        set(IB_GIT_COMMIT "${sha}")
        if(NOT rc EQUAL 0 OR NOT changes STREQUAL "")
          set(IB_GIT_COMMIT "${sha}-dirty")
        endif()
      endif()
    endif()
  endif()
endif()
if(NOT IB_GIT_COMMIT MATCHES "^[0-9A-Za-z._-]*$")
  message(FATAL_ERROR "IBSOL_GIT_COMMIT '${IB_GIT_COMMIT}': only letters, digits, '.', '_' and '-' are allowed")
endif()
configure_file("${SRC}" "${DST}" @ONLY)
