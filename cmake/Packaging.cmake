# Packaging.cmake — install rules for the files that are not build targets (man pages,
# completions, the systemd unit, docs) and CPack's DEB generator over the same rules, so
# `cmake --install` and `bash scripts/package.sh` lay out exactly the same files.

# Every tool and page is an administrator's command (section 8, binaries in sbin, see
# tools/CMakeLists.txt); mailhost(5) describes the spool. Pages are installed gzipped
# (Debian policy 12.1), without a timestamp (-n) so the package is reproducible.
file(GLOB mh_man_pages CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/man/*.[58])
set(mh_man_gz)
foreach(page ${mh_man_pages})
  get_filename_component(name ${page} NAME)
  string(REGEX REPLACE ".*\\." "" section ${name})
  set(gz ${PROJECT_BINARY_DIR}/man/${name}.gz)
  add_custom_command(OUTPUT ${gz} COMMAND gzip -9nc ${page} > ${gz} DEPENDS ${page}
                     COMMENT "Compressing man page ${name}")
  install(FILES ${gz} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
  list(APPEND mh_man_gz ${gz})
endforeach()
file(MAKE_DIRECTORY ${PROJECT_BINARY_DIR}/man)
add_custom_target(mh_man_pages ALL DEPENDS ${mh_man_gz})

# bash-completion loads completions/<command> on first use of <command>: a tool's script
# is installed under the tool's name; any other file (a helper the scripts source) keeps
# its own name beside them.
set(mh_completion_dir ${CMAKE_INSTALL_DATADIR}/bash-completion/completions)
file(GLOB mh_completions CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/completions/*)
foreach(file ${mh_completions})
  get_filename_component(name ${file} NAME)
  get_filename_component(stem ${file} NAME_WLE)
  if(TARGET ${stem})
    install(FILES ${file} DESTINATION ${mh_completion_dir} RENAME ${stem})
  else()
    install(FILES ${file} DESTINATION ${mh_completion_dir})
  endif()
endforeach()

# Debian 12 keeps units in /lib/systemd/system (lintian: systemd-service-file-outside-lib).
# The unit names /usr/sbin/mh-serve, so only a /usr install (the package) gets it; a
# /usr/local one has contrib/mh-serve.service to adapt.
set(MH_SYSTEMD_UNIT_DIR /lib/systemd/system CACHE PATH "Where the systemd unit is installed")
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  install(FILES packaging/mailhost.service DESTINATION ${MH_SYSTEMD_UNIT_DIR})
endif()

# Who made the package: the last commit's author unless MH_PACKAGE_MAINTAINER is given.
execute_process(COMMAND git -C ${PROJECT_SOURCE_DIR} log -1 "--format=%an <%ae>"
                OUTPUT_VARIABLE mh_git_author OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(NOT mh_git_author)
  set(mh_git_author "mailhost maintainers <maintainers@mailhost.invalid>")
endif()
set(MH_PACKAGE_MAINTAINER "${mh_git_author}" CACHE STRING "Maintainer field of the .deb")
# The changelog's date is the last commit's, so two builds of one commit are identical.
execute_process(COMMAND git -C ${PROJECT_SOURCE_DIR} log -1 --format=%cD
                OUTPUT_VARIABLE MH_PACKAGE_DATE OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(NOT MH_PACKAGE_DATE)
  string(TIMESTAMP MH_PACKAGE_DATE "%a, %d %b %Y %H:%M:%S +0000" UTC)
endif()

# Debian policy 12.7: a copyright file and the changelog (a native package: changelog.gz,
# compressed without a timestamp so the package is reproducible).
set(mh_docdir ${CMAKE_INSTALL_DATADIR}/doc/mailhost)
install(FILES README.md packaging/debian/copyright DESTINATION ${mh_docdir})
set(mh_changelog ${PROJECT_BINARY_DIR}/packaging/changelog)
configure_file(packaging/debian/changelog.in ${mh_changelog} @ONLY)
execute_process(COMMAND gzip -9nf ${mh_changelog} RESULT_VARIABLE mh_gzip_failed)
if(mh_gzip_failed)
  message(FATAL_ERROR "cannot compress ${mh_changelog} with gzip")
endif()
install(FILES ${mh_changelog}.gz DESTINATION ${mh_docdir})

# The DEB: runtime dependencies come from the binaries (dpkg-shlibdeps), adduser from
# the postinst; the maintainer scripts create the user and the spool and enable the unit.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME mailhost)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${MH_PACKAGE_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION mail)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "mail for shared hosting: SMTP, submission and POP3 over one spool")
# The long description only: CPack puts the summary above it as the synopsis.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "mailhost serves many domains, each with mailboxes and mailing lists, from
one spool directory: the mh-serve daemon (inbound SMTP, submission with AUTH,
POP3, all with TLS) and the administration tools mh-user, mh-quota, mh-purge,
mh-filter and mh-list. The package creates the system user mailhost, the
spool /var/spool/mailhost and the mailhost.service systemd unit.")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/packaging/debian/postinst
    ${PROJECT_SOURCE_DIR}/packaging/debian/prerm
    ${PROJECT_SOURCE_DIR}/packaging/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
