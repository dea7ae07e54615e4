(ns demo.core
  (:require [clojure.string :as str]))

(defn greet
  "Says hello."
  [name]
  (str/join ["hello " name]))

(def limit 3)
