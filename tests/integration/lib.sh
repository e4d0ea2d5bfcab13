# sh
