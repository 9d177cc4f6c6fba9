# The Rack app of the suite, which puma serves.
run ->(env) { [200, { "content-type" => "text/plain", "content-length" => "3" }, ["ok\n"]] }
