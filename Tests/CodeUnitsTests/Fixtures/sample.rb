require 'json'

# A parser.
class Parser < Base
  # Parses text.
  def parse(text)
    if text.empty?
      return nil
    end
    JSON.parse(text)
  rescue JSON::ParserError
    nil
  end

  def self.build
    new
  end
end

module Helpers
  def helper
    puts "hi"
  end
end
