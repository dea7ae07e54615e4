@echo off
:start
echo hello
goto start
