defmodule Greeter do
  @moduledoc "Greets."
  @default "hi"

  @doc "Says hello."
  def hello(name) do
    IO.puts("hello #{name}")
  end

  defp secret(x), do: x * 2
end
