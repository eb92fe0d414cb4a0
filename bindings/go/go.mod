module rarch-logging/rarchlog

go 1.26
